from django.contrib import admin

from .models import CorrectionRecord, OpenEvent, Prediction, PromotionDecision, QueueSetting, SnapshotEvaluation


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = ["id", "image", "model_version", "nail_count", "confidence", "uncertainty", "draft_state", "review_state", "created_at"]
    list_filter = ["draft_state", "review_state", "model_version"]
    raw_id_fields = ["image", "job"]
    exclude = ["overlay_png"]
    readonly_fields = ["nails", "geometry", "draft_version", "input_size", "seconds"]


@admin.register(CorrectionRecord)
class CorrectionRecordAdmin(admin.ModelAdmin):
    list_display = ["image", "model_version_name", "outcome", "nails_added", "nails_deleted", "vertices_moved", "vertices_added",
                    "vertices_removed", "classes_changed", "mean_iou", "seconds_to_submit", "submitted_at"]
    list_filter = ["outcome", "drafted", "model_version_name"]
    raw_id_fields = ["image", "prediction"]


@admin.register(PromotionDecision)
class PromotionDecisionAdmin(admin.ModelAdmin):
    list_display = ["created_at", "model_version", "previous_active", "promoted", "override", "candidate_miou", "active_miou",
                    "decided_by"]
    list_filter = ["promoted", "override"]

    def has_change_permission(self, request, obj=None):
        return False  # decisions are a record: never edited

    def has_add_permission(self, request):
        return False  # decisions are made by prelabel.promotion.promote


admin.site.register(OpenEvent, list_display=["image", "user", "opened_at", "annotation_version"], raw_id_fields=["image"])
admin.site.register(SnapshotEvaluation, list_display=["model_version", "snapshot", "size", "miou", "created_at"])
admin.site.register(QueueSetting, list_display=["order", "changed_by", "changed_at"])
