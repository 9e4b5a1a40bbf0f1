from django.contrib import admin

from .models import ModelVersion, TrainingRun


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ["id", "snapshot", "preset", "status", "created_by", "created_at"]
    readonly_fields = [f.name for f in TrainingRun._meta.fields]


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["name", "is_active", "snapshot_content_hash", "created_at"]
    readonly_fields = [f.name for f in ModelVersion._meta.fields if f.name != "activation_note"]
