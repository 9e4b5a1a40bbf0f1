"""Job kinds of pre-labeling (see jobs.registry): both run on the "prelabel" queue."""
from __future__ import annotations

from jobs.registry import JobArgumentError, job_kind

ACTIVE = "active"


def _model_name(value) -> str:
    from training.models import ModelVersion

    if value == ACTIVE:
        active = ModelVersion.objects.active()
        if active is None:
            raise JobArgumentError("no model is active: name a model version")
        return active.name
    if isinstance(value, int) and not isinstance(value, bool):
        found = ModelVersion.objects.filter(pk=value).first()
    elif isinstance(value, str) and value:
        found = ModelVersion.objects.filter(name=value).first()
    else:
        found = None
    if found is None:
        raise JobArgumentError(f"model must be a model version's name or id, or 'active', not {value!r}")
    return found.name


def _prelabel_arguments(arguments: dict) -> dict:
    from labeling.models import Image, Participant

    unknown = set(arguments) - {"model", "image_ids", "participant", "unlabeled", "force"}
    if unknown:
        raise JobArgumentError(f"unknown arguments: {', '.join(sorted(unknown))}")
    out = {"model": _model_name(arguments.get("model", ACTIVE))}
    chosen = [key for key in ("image_ids", "participant", "unlabeled") if arguments.get(key) not in (None, False, [], "")]
    if len(chosen) != 1:
        raise JobArgumentError("say which images: exactly one of image_ids, participant or unlabeled")
    key = chosen[0]
    if key == "image_ids":
        ids = arguments["image_ids"]
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise JobArgumentError("image_ids must be a list of image ids")
        ids = sorted(set(ids))
        missing = sorted(set(ids) - set(Image.objects.filter(pk__in=ids).values_list("pk", flat=True)))
        if missing:
            raise JobArgumentError(f"there are no images {missing[:10]}")
        out["image_ids"] = ids
    elif key == "participant":
        code = arguments["participant"]
        if not isinstance(code, str) or not Participant.objects.filter(code=code, erased_at__isnull=True).exists():
            raise JobArgumentError(f"participant must be the code of an existing participant, not {code!r}")
        out["participant"] = code
    else:
        if arguments["unlabeled"] is not True:
            raise JobArgumentError("unlabeled must be true")
        out["unlabeled"] = True
    if arguments.get("force"):
        out["force"] = True
    return out


def select_images(model_version, image_ids=None, participant=None, unlabeled=False, force=False):
    """The images a prelabel job works on, in id order. ``image_ids``: exactly those. Otherwise the
    images still open for labelling (unlabeled or draft) of the participant, or of everyone; without
    ``force``, images this model already predicted are left out."""
    from labeling.models import Annotation, Image

    from .models import Prediction

    images = Image.objects.select_related("annotation").order_by("pk")
    if image_ids is not None:
        images = images.filter(pk__in=image_ids)
    else:
        images = images.filter(annotation__status__in=[Annotation.Status.UNLABELED, Annotation.Status.DRAFT],
                               participant__erased_at__isnull=True)
        if participant:
            images = images.filter(participant__code=participant)
        if not force:
            done = Prediction.objects.filter(model_version=model_version).values("image_id")
            images = images.exclude(pk__in=done)
    return images


@job_kind("prelabel", queue="prelabel", title="Pre-label images with a model", validate=_prelabel_arguments)
def prelabel_job(ctx, model: str, image_ids=None, participant=None, unlabeled=False, force=False) -> dict:
    """Predict, post-process and write drafts for a batch of images with one model (loaded once)."""
    from training.models import ModelVersion
    from training.serving import predict_picture, predictor_for

    from .drafts import save_prediction
    from .metrics import collect_corrections

    version = ModelVersion.objects.get(name=model)
    images = list(select_images(version, image_ids, participant, unlabeled, force))
    total = len(images)
    ctx.progress(0.0, f"loading {version.name} for {total} image(s)")
    predictor = predictor_for(version)
    counts = {"images": total, "predicted": 0, "drafted": 0, "kept": 0, "skipped_human": 0, "skipped_status": 0, "failed": 0,
              "nails": 0}
    seconds = 0.0
    for number, image in enumerate(images, start=1):
        try:
            rgb = image.read_rgb()
            result = predict_picture(predictor, rgb, votes=True)
            prediction = save_prediction(image, version, result, job=ctx.job, photo=rgb)
        except Exception as exc:  # one unreadable image must not stop the batch
            counts["failed"] += 1
            ctx.log(f"image {image.pk}: {exc.__class__.__name__}: {exc}")
        else:
            counts["predicted"] += 1
            counts[prediction.draft_state] += 1
            counts["nails"] += prediction.nail_count
            seconds += result.seconds
        ctx.progress(number / max(1, total), f"{number} of {total} images: {counts['drafted']} drafts written")
    counts["corrections_collected"] = collect_corrections(limit=500)
    counts["model"] = version.name
    counts["seconds_per_image"] = round(seconds / counts["predicted"], 4) if counts["predicted"] else None
    return counts


def _promote_arguments(arguments: dict) -> dict:
    unknown = set(arguments) - {"model", "override_reason"}
    if unknown:
        raise JobArgumentError(f"unknown arguments: {', '.join(sorted(unknown))}")
    if arguments.get("model") == ACTIVE:
        raise JobArgumentError("name the model version to promote")
    out = {"model": _model_name(arguments.get("model"))}
    reason = arguments.get("override_reason") or ""
    if not isinstance(reason, str):
        raise JobArgumentError("override_reason must be text")
    if reason.strip():
        out["override_reason"] = reason.strip()
    return out


@job_kind("promote_model", queue="prelabel", title="Promote a model version (gated)", validate=_promote_arguments)
def promote_model_job(ctx, model: str, override_reason: str = "") -> dict:
    """Measure the candidate and the active model on the current snapshot's val split (once each) and
    make the candidate active if the gate passes or an admin overrides it."""
    from training.models import ModelVersion

    from .promotion import evaluate_on_snapshot, promote

    user = ctx.job.created_by
    candidate = ModelVersion.objects.get(name=model)
    ctx.progress(0.05, f"measuring {candidate.name} against the active model")

    def evaluate(version, snapshot):
        ctx.log(f"val mIoU of {version.name} on {snapshot.name}")
        return evaluate_on_snapshot(version, snapshot)

    if user is None:
        raise PermissionError("a promotion needs the admin who asked for it (use the API, the page or the command with --user)")
    decision = promote(candidate, user, override_reason=override_reason, evaluate=evaluate)
    ctx.progress(1.0, ("promoted " if decision.promoted else "refused ") + candidate.name)
    return {"decision": decision.pk, "promoted": decision.promoted, "override": decision.override, "reason": decision.reason,
            "candidate_miou": decision.candidate_miou, "active_miou": decision.active_miou, "snapshot": decision.snapshot_name}
