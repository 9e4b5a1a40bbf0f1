from django.contrib import admin

from .models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "status", "progress", "message", "created_by", "created_at", "finished_at", "attempts"]
    list_filter = ["status", "kind", "queue"]
    search_fields = ["kind", "key", "message", "error"]
    readonly_fields = [f.name for f in Job._meta.fields]
