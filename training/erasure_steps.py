"""What erasing a participant removes from training (see labeling/erasure.py): the training-data folders
(``training_data_dir``: a snapshot's masks export, kept on disk for every run on it) of the snapshots that
hold their pictures; the next run on such a snapshot rebuilds it without them. Trained weights, and the
checkpoints of runs, are not retrained or deleted: they hold no pictures, only what a model learned."""
from __future__ import annotations

from pathlib import Path

from curation.erasure_steps import snapshots_with
from labeling.erasure import erasure_step

from .runs import training_data_dir_of


def cached_training_data(participant) -> list[Path]:
    return [folder for folder in map(training_data_dir_of, snapshots_with(participant)) if folder.exists()]


@erasure_step("training_data", order=10, labels={"training_data": "copies of a dataset snapshot prepared for training"})
class TrainingData:
    @staticmethod
    def plan(participant):
        return {"training_data": len(cached_training_data(participant))}

    @staticmethod
    def erase(erasure):
        folders = cached_training_data(erasure.participant)
        for folder in folders:
            erasure.remove_after_commit(folder)
        return {"training_data": len(folders)}
