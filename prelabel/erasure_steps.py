"""What erasing a participant removes from pre-labeling (see labeling/erasure.py): the models'
predictions for their images (nails, probability overlay), correction records and the times annotators
opened their images. Model drafts are annotation revisions and go with the annotations."""
from labeling.erasure import erasure_step

from .models import CorrectionRecord, OpenEvent, Prediction


@erasure_step("prelabel", order=40, labels={"predictions": "model predictions for your pictures",
                                            "corrections": "records of corrections made to those predictions",
                                            "open_events": "records of annotators opening your pictures"})
class PrelabelRecords:
    @staticmethod
    def plan(participant):
        return {"predictions": Prediction.objects.filter(image__participant=participant).count(),
                "corrections": CorrectionRecord.objects.filter(image__participant=participant).count(),
                "open_events": OpenEvent.objects.filter(image__participant=participant).count()}

    @staticmethod
    def erase(erasure):
        counts = PrelabelRecords.plan(erasure.participant)
        CorrectionRecord.objects.filter(image__participant=erasure.participant).delete()
        Prediction.objects.filter(image__participant=erasure.participant).delete()
        OpenEvent.objects.filter(image__participant=erasure.participant).delete()
        return counts
