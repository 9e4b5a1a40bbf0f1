"""The labeling models in the Django admin: participants (CSV import, upload links, erasure), uploads, images
and revisions. Nothing that holds a participant's photos can be deleted here, only erased (EraseInsteadOfDelete)."""
from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Count
from django.shortcuts import redirect, render
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html

from .models import Annotation, AnnotationRevision, Image, Participant, Upload
from .erasure import describe_counts, erase_participant, erasure_plan
from .participants import ParticipantImportError, import_participants_csv


class EraseInsteadOfDelete:
    """No delete in the admin, single or bulk (``delete_selected``): deleting a Participant, Upload or Image
    row there would skip the erasure (labeling/erasure.py) and leave the photo's files (raw upload, stored
    image, thumbnail) and what was derived from them (snapshot rows, export zips, training data, predictions,
    job records) behind, with no record that anything was removed. A participant's data goes through the
    participant's "Erase all data" action (or ``POST /api/participants/CODE/erase/``), which reaches every copy."""

    def has_delete_permission(self, request, obj=None):
        return False


class ParticipantCsvForm(forms.Form):
    file = forms.FileField(help_text="CSV with a header row: code[,notes]. All or nothing: one bad row imports none.")


@admin.register(Participant)
class ParticipantAdmin(EraseInsteadOfDelete, admin.ModelAdmin):
    list_display = ["code", "upload_count", "image_count", "consent_at", "consent_version", "erased_at", "upload_link"]
    search_fields = ["code", "notes"]
    list_filter = ["consent_version", ("erased_at", admin.EmptyFieldListFilter)]
    readonly_fields = ["upload_link", "upload_token", "token_rotated_at", "consent_at", "consent_version", "erased_at", "created_at"]
    actions = ["rotate_tokens", "erase_data"]
    change_list_template = "admin/labeling/participant/change_list.html"

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_images=Count("images", distinct=True), n_uploads=Count("uploads", distinct=True))

    @admin.display(ordering="n_images", description="images")
    def image_count(self, obj):
        return obj.n_images

    @admin.display(ordering="n_uploads", description="uploads")
    def upload_count(self, obj):
        return obj.n_uploads

    @admin.display(description="upload link")
    def upload_link(self, obj):
        if obj.erased_at:
            return "erased"
        return format_html('<a href="{0}" target="_blank">{0}</a>', obj.upload_path)

    @admin.action(description="Rotate the upload links of the selected participants")
    def rotate_tokens(self, request, queryset):
        for participant in queryset:
            participant.rotate_token()
        self.message_user(request, f"rotated {queryset.count()} upload links; the old links no longer work")

    @admin.action(description="Erase all data of the selected participants (files, images, labels, exports...)")
    def erase_data(self, request, queryset):
        """First a confirmation page listing what will go (the erasure plan), then the erasure itself."""
        participants = list(queryset.order_by("code"))
        if request.POST.get("post") != "yes":
            return TemplateResponse(request, "admin/labeling/participant/erase_confirmation.html", {
                **self.admin_site.each_context(request), "title": "Erase participants' data", "opts": self.model._meta,
                "plans": [(participant, erasure_plan(participant)) for participant in participants],
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            })
        totals: dict[str, int] = {}
        for participant in participants:
            for key, value in erase_participant(participant, requested_by=f"admin {request.user.username}").items():
                totals[key] = totals.get(key, 0) + value
        removed = ", ".join(f"{line.count} {line.label}" for line in describe_counts(totals)) or "nothing was stored"
        self.message_user(request, f"erased {len(participants)} participants: {removed}", messages.WARNING)
        return None

    def get_urls(self):
        return [path("import-csv/", self.admin_site.admin_view(self.import_csv), name="labeling_participant_import_csv")] + super().get_urls()

    def import_csv(self, request):
        form = ParticipantCsvForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                created = import_participants_csv(form.cleaned_data["file"].read().decode("utf-8-sig"))
            except (ParticipantImportError, UnicodeDecodeError) as exc:
                form.add_error("file", str(exc))
            else:
                self.message_user(request, f"created {len(created)} participants")
                return redirect("admin:labeling_participant_changelist")
        context = {**self.admin_site.each_context(request), "form": form, "title": "Import participants from CSV", "opts": self.model._meta}
        return render(request, "admin/labeling/participant/import_csv.html", context)


@admin.register(Upload)
class UploadAdmin(EraseInsteadOfDelete, admin.ModelAdmin):
    list_display = ["id", "participant", "original_name", "kind", "content_type", "size", "status", "created_at"]
    list_filter = ["status", "kind", "content_type"]
    search_fields = ["original_name", "sha256", "participant__code"]
    readonly_fields = ["sha256", "size", "content_type", "kind", "created_at", "raw_file"]
    exclude = ["file"]

    @admin.display(description="raw file")
    def raw_file(self, obj):
        """The file as sent is kept only until its ingest succeeds or is refused (labeling.intake.discard_raw)."""
        return "kept until processed" if obj.file else "removed: only the processed images (no metadata) are kept"


class AnnotationInline(admin.StackedInline):
    model = Annotation
    extra = 0
    readonly_fields = ["version", "geometry", "updated_by", "updated_at"]


@admin.register(Image)
class ImageAdmin(EraseInsteadOfDelete, admin.ModelAdmin):
    list_display = ["id", "preview", "participant", "width", "height", "upload", "frame_index", "timestamp_s", "created_at"]
    list_filter = ["participant"]
    search_fields = ["sha256", "participant__code"]
    readonly_fields = ["preview", "sha256", "width", "height", "created_at"]
    inlines = [AnnotationInline]

    @admin.display(description="thumbnail")
    def preview(self, obj):
        return format_html('<img src="/api/images/{}/thumbnail/" style="height:64px">', obj.pk) if obj.thumbnail else "-"


@admin.register(AnnotationRevision)
class AnnotationRevisionAdmin(admin.ModelAdmin):
    list_display = ["annotation", "version", "status", "source", "author", "created_at"]
    list_filter = ["source", "status"]
    readonly_fields = [f.name for f in AnnotationRevision._meta.fields]
