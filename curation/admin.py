from django.contrib import admin

from .models import Export, ParticipantSplit, Snapshot


@admin.register(Snapshot)
class SnapshotAdmin(admin.ModelAdmin):
    list_display = ["name", "status", "content_hash", "created_by", "created_at", "include_submitted"]
    readonly_fields = [f.name for f in Snapshot._meta.fields]


@admin.register(ParticipantSplit)
class ParticipantSplitAdmin(admin.ModelAdmin):
    list_display = ["participant", "split", "pinned", "assigned_at", "assigned_by_snapshot"]
    list_filter = ["split", "pinned"]
    search_fields = ["participant__code"]


@admin.register(Export)
class ExportAdmin(admin.ModelAdmin):
    list_display = ["snapshot", "format", "size", "created_at"]
