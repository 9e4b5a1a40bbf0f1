from django.contrib import admin

from .models import Annotation, AnnotationRevision, Image, Participant, Upload


@admin.register(Participant)
class ParticipantAdmin(admin.ModelAdmin):
    list_display = ["code", "consent_at", "consent_version", "created_at", "upload_path"]
    search_fields = ["code", "notes"]
    readonly_fields = ["upload_token", "token_rotated_at", "created_at"]
    actions = ["rotate_tokens"]

    @admin.action(description="Rotate the upload links of the selected participants")
    def rotate_tokens(self, request, queryset):
        for participant in queryset:
            participant.rotate_token()
        self.message_user(request, f"rotated {queryset.count()} upload links")


@admin.register(Upload)
class UploadAdmin(admin.ModelAdmin):
    list_display = ["id", "participant", "original_name", "content_type", "size", "status", "created_at"]
    list_filter = ["status", "kind", "content_type"]
    search_fields = ["original_name", "sha256", "participant__code"]
    readonly_fields = ["sha256", "size", "content_type", "kind", "created_at"]


class AnnotationInline(admin.StackedInline):
    model = Annotation
    extra = 0
    readonly_fields = ["version", "geometry", "updated_by", "updated_at"]


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["id", "participant", "width", "height", "frame_index", "created_at"]
    list_filter = ["participant"]
    search_fields = ["sha256", "participant__code"]
    readonly_fields = ["sha256", "width", "height", "created_at"]
    inlines = [AnnotationInline]


@admin.register(AnnotationRevision)
class AnnotationRevisionAdmin(admin.ModelAdmin):
    list_display = ["annotation", "version", "status", "source", "author", "created_at"]
    list_filter = ["source", "status"]
    readonly_fields = [f.name for f in AnnotationRevision._meta.fields]
