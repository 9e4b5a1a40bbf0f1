from django.contrib import admin

from .models import ModelVersion, TrainingRun


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ["id", "snapshot", "preset", "status", "created_by", "created_at"]
    readonly_fields = [f.name for f in TrainingRun._meta.fields]


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["name", "is_active", "snapshot_content_hash", "created_at"]
    # is_active is read-only here: activation goes through the promotion gate (/prelabel/metrics/,
    # `manage.py promote_model`), which compares val mIoU and records overrides with their reason.
    readonly_fields = [f.name for f in ModelVersion._meta.fields]
