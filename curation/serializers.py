from rest_framework import serializers

from dataset.formats import EXPORTERS, NAME_CHOICES
from dataset.splits import SPLITS
from labeling.models import Participant

from .models import Export, ParticipantSplit, Snapshot


class ExportSerializer(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Export
        fields = ["format", "size", "created_at", "download_url", "withdrawn_at", "withdrawn_reason"]

    def get_download_url(self, export) -> str:
        return f"/api/snapshots/{export.snapshot.name}/download/{export.format}/"


class SnapshotSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    holds_erased_data = serializers.BooleanField(read_only=True)
    exports = ExportSerializer(many=True, read_only=True)

    class Meta:
        model = Snapshot
        fields = ["name", "status", "include_submitted", "ratios", "seed", "content_hash", "counts", "leaks",
                  "holds_erased_data", "erased_items", "job", "created_by", "created_at", "exports"]
        read_only_fields = fields


class SnapshotCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    ratios = serializers.ListField(child=serializers.FloatField(), min_length=3, max_length=3, required=False)
    seed = serializers.IntegerField(required=False, default=0)
    include_submitted = serializers.BooleanField(required=False, default=False)


class SnapshotExportSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=list(EXPORTERS))
    names = serializers.ChoiceField(choices=NAME_CHOICES, default=NAME_CHOICES[0], required=False,
                                    help_text="original: the participants' file names (unique); id: image ids")


class ParticipantSplitSerializer(serializers.ModelSerializer):
    participant = serializers.SlugRelatedField(slug_field="code", queryset=Participant.objects.all())
    split = serializers.ChoiceField(choices=SPLITS)

    class Meta:
        model = ParticipantSplit
        fields = ["participant", "split", "pinned", "assigned_at", "assigned_by_snapshot"]
        read_only_fields = ["pinned", "assigned_at", "assigned_by_snapshot"]
