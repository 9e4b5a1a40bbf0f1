"""Training presets (issue #17): one place (ml/train_presets.py) says each preset's device, budget and measured
figure; the measured presets' budgets are the measured runs' (their JSON under docs/results/), the figures they
quote are in the sections the benches wrote; the API, the job, the commands and the training page read that
one place; a GPU preset on a machine without CUDA stops at its start saying so."""
import html
import json
import re
from dataclasses import replace
from io import StringIO
from pathlib import Path

import pytest
import torch
from django.core.management import CommandError, call_command

from jobs.models import Job
from jobs.registry import JobArgumentError, get_job_kind
from ml.ablation import row_overrides
from ml.train import train_config
from ml.train_presets import (DEFAULT_TRAIN_PRESET, DEVICES, TRAIN_PRESETS, Measurement, TrainPreset, bench_warmup_steps,
                              cuda_refusal)
from tests.test_training_job import nail_snapshot
from training.models import TrainingRun

ROOT = Path(__file__).resolve().parents[1]
#: Fields of a config that say where and how a run executes, not what it computes (the benches set their own).
RUN_ENVIRONMENT = {"device", "num_workers", "cache_data", "seed", "patience", "channels_last"}
#: Which epoch a run keeps is no part of its budget: a cross-validation scores every strategy on the same run
#: (the preset's choice is checked against the figure it quotes first).
NOT_BUDGET = RUN_ENVIRONMENT | {"keep"}


def budget_differences(name: str, preset: TrainPreset) -> list[str]:
    """How the preset's config differs from the config its measured run trained (rebuilt from the run's JSON
    ``args`` the way bench/cv.py and bench/ablation.py build it: the base preset with the row's overrides, the
    crop size, the budget, a warm-up of a tenth of the steps up to 100, no early stop)."""
    measured = preset.measured
    args = json.loads((ROOT / measured.results).read_text())["args"]
    row = measured.rows[0].split("|")[1].strip()
    bench = train_config(args["preset"], **row_overrides(row), augment={"crop_size": args["crop"]},
                         epochs=args["epochs"], steps_per_epoch=args["steps"], batch_size=args["batch"],
                         val_size=args["val_size"], warmup_steps=bench_warmup_steps(args["epochs"], args["steps"]))
    ours = _config_of(name, preset)
    a, b = ours.to_dict(), bench.to_dict()
    problems = [f"{key}: preset {a[key]!r}, measured {b[key]!r}" for key in a if key not in NOT_BUDGET and a[key] != b[key]]
    if ours.patience < ours.epochs:
        problems.append(f"patience {ours.patience} < {ours.epochs} epochs: the measured run never stopped early")
    return problems


def _config_of(name: str, preset: TrainPreset):
    """The TrainConfig of ``preset`` as if it were TRAIN_PRESETS[name] (a changed copy may be checked too)."""
    from ml.train import preset_config

    original = TRAIN_PRESETS[name]
    TRAIN_PRESETS[name] = preset
    try:
        return preset_config(name)
    finally:
        TRAIN_PRESETS[name] = original


def section_text(name: str) -> str:
    text = (ROOT / "docs" / "benchmarks.md").read_text()
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    assert start in text and end in text, f"docs/benchmarks.md has no section {name!r}"
    return text.split(start, 1)[1].split(end, 1)[0]


def figure_problems(measured: Measurement) -> list[str]:
    """The figures a measurement quotes that its section does not say: every decimal of ``figure`` must be a
    value of one of its ``rows`` (a table row the bench wrote), and the seconds of ``time`` a cell of the section."""
    section = section_text(measured.section)
    lines = [next((line for line in section.splitlines() if line.startswith(row)), None) for row in measured.rows]
    problems = [f"no row {row!r} in section {measured.section}" for row, line in zip(measured.rows, lines) if line is None]
    values = {v for line in lines if line for v in re.findall(r"\d+\.\d+", line)}
    problems += [f"{v} is in no row {measured.rows} of {measured.section}"
                 for v in re.findall(r"\d+\.\d+", measured.figure) if v not in values]
    for seconds in re.findall(r"(\d+) s\b", measured.time):
        if f"| {seconds} |" not in section:
            problems.append(f"{seconds} s is in no table cell of {measured.section}")
    return problems


MEASURED = [name for name, preset in TRAIN_PRESETS.items() if preset.measured]


def test_there_is_a_measured_cpu_preset_and_a_measured_gpu_preset():
    assert {TRAIN_PRESETS[name].device for name in MEASURED} >= {"cpu", "gpu"}
    assert {"tiny", "web-336", "native-448"} <= set(TRAIN_PRESETS)  # saved runs name them
    assert TRAIN_PRESETS["cpu-224"].device == "cpu" and TRAIN_PRESETS["gpu-336"].device == "gpu"


@pytest.mark.parametrize("name", MEASURED)
def test_a_measured_presets_budget_is_the_measured_runs(name):
    preset = TRAIN_PRESETS[name]
    assert budget_differences(name, preset) == []
    # A preset whose budget moved away from its measurement is caught, field by field.
    assert any(p.startswith("epochs:") for p in budget_differences(name, replace(preset, epochs=preset.epochs + 1)))
    assert any(p.startswith("augment:") for p in budget_differences(name, replace(preset, crop_size=preset.crop_size + 32)))
    assert any("patience" in p for p in budget_differences(name, replace(preset, patience=2)))
    assert any(p.startswith("warmup_steps:") for p in budget_differences(name, replace(preset, warmup_steps=preset.warmup + 1)))


def test_a_presets_warm_up_follows_its_budget_unless_it_sets_its_own():
    """The measured runs warm up for a tenth of their steps (at most 100); a preset without a warm-up of its own
    does the same, also when a copy changes its budget, and one without steps per epoch must set it."""
    assert TRAIN_PRESETS["cpu-224-long"].warmup_steps is None and TRAIN_PRESETS["cpu-224-long"].warmup == 38
    assert replace(TRAIN_PRESETS["cpu-224-long"], epochs=64).warmup == 76 == train_config("cpu-224-longer").warmup_steps
    assert replace(TRAIN_PRESETS["cpu-224-long"], epochs=320).warmup == 100 == bench_warmup_steps(320, 12)
    assert train_config("tiny").warmup_steps == 0 and train_config("web-336").warmup_steps == 100
    with pytest.raises(ValueError, match="without steps per epoch must set warmup_steps"):
        replace(TRAIN_PRESETS["web-336"], warmup_steps=None)


def test_the_cpu_preset_is_the_cv_cpu_budget_in_words():
    preset = TRAIN_PRESETS["cpu-224"]
    args = json.loads((ROOT / preset.measured.results).read_text())["args"]
    assert (args["epochs"], args["steps"], args["batch"], args["crop"]) == (8, 6, 8, 224)
    assert preset.budget.startswith("8 epochs x 6 steps x batch 8 (384 crops of 224x224), model cascade-55-f256")
    assert preset.measured.section == "cv-cpu-input" and "72.0 ± 2.1" in preset.measured_text
    assert args["input_side"] == preset.val_size and args["max_side"] is None  # scored at the model's input size


def test_the_default_preset_trains_the_improved_cascade_at_the_16x_cpu_budget():
    """Issue #17: a run that names no preset trains the cascade with one shared encoder, refined to stride 4, at the
    budget of cv-cpu-16x, where that model scored ahead of a U-Net trained alike; the paper's cascade stays
    reachable by name."""
    preset = TRAIN_PRESETS[DEFAULT_TRAIN_PRESET]
    assert DEFAULT_TRAIN_PRESET == "cpu-224-longer" and preset.device == "cpu"
    config = train_config(DEFAULT_TRAIN_PRESET)
    assert config.model.shared_encoder and config.model.low_downsample == 1 and config.model.refine_stride == 4
    assert config.model.fusion_width == 128 and config.model.pretrained == "imagenet-tflite"
    args = json.loads((ROOT / preset.measured.results).read_text())["args"]
    assert (args["epochs"], args["steps"], args["batch"], args["crop"]) == (64, 12, 8, 224)
    assert preset.budget.startswith("64 epochs x 12 steps x batch 8 (6144 crops of 224x224), "
                                    "model cascade-55-shared-f128-refined")
    assert preset.measured.section == "cv-cpu-16x-channels-last" and "89.6 ± 2.1" in preset.measured_text
    assert args["channels_last"] is True and config.channels_last  # measured as it trains: NHWC
    paper = train_config("web-336").model
    assert not paper.shared_encoder and paper.low_downsample == 2 and paper.fusion_width == 320


def test_the_8x_cpu_preset_is_the_default_model_at_half_the_budget_measured_at_8x():
    """cpu-224-long trains the default's model for half the epochs (the rest of its budget the same), and its
    figure comes from cv-cpu-8x, where the U-Net was trained at the same budget."""
    long, default = train_config("cpu-224-long"), train_config(DEFAULT_TRAIN_PRESET)
    assert long.model == default.model and long.augment == default.augment and long.lr == default.lr
    assert (2 * long.epochs, long.steps_per_epoch, long.batch_size) == (default.epochs, default.steps_per_epoch,
                                                                       default.batch_size)
    preset = TRAIN_PRESETS["cpu-224-long"]
    args = json.loads((ROOT / preset.measured.results).read_text())["args"]
    assert (args["epochs"], args["steps"], args["batch"], args["crop"]) == (32, 12, 8, 224)
    assert preset.measured.section == "cv-cpu-8x" and "87.8 ± 4.6" in preset.measured_text
    assert preset.budget.startswith("32 epochs x 12 steps x batch 8 (3072 crops of 224x224), "
                                    "model cascade-55-shared-f128-refined")


@pytest.mark.parametrize("name", MEASURED)
def test_a_measured_preset_keeps_the_epoch_its_figure_quotes_first(name):
    """The CV-measured presets (fixed schedules, a 6-photo val split) keep the last epoch, which every such
    cross-validation scored level with or ahead of the best val epoch, and their figure's first number is the
    `last` row's; the GPU preset, measured with its best val epoch kept, keeps that."""
    preset = TRAIN_PRESETS[name]
    cv = preset.measured.section.startswith("cv-")
    assert preset.keep == ("last" if cv else "best-val") and train_config(name).keep == preset.keep
    assert ("keeps the last epoch" in preset.budget) == cv and ("keeps the best val epoch" in preset.budget) != cv
    if cv:
        first = re.match(r"held-out binary mIoU (\d+\.\d ± \d+\.\d) % with the last epoch kept", preset.measured.figure)
        assert first, preset.measured.figure
        (last_row,) = [row for row in preset.measured.rows[:2] if "| last |" in row]
        (line,) = [line for line in section_text(preset.measured.section).splitlines() if line.startswith(last_row)]
        assert line.split("|")[3].strip() == first.group(1)


@pytest.mark.parametrize("name", MEASURED)
def test_the_figures_a_preset_quotes_are_in_the_section_the_bench_wrote(name):
    measured = TRAIN_PRESETS[name].measured
    assert figure_problems(measured) == []
    assert figure_problems(replace(measured, figure=measured.figure + ", or 99.9")) == [
        f"99.9 is in no row {measured.rows} of {measured.section}"]
    assert figure_problems(replace(measured, time="7 s")) == [f"7 s is in no table cell of {measured.section}"]


def test_every_preset_builds_and_describes_itself():
    for name, preset in TRAIN_PRESETS.items():
        config = train_config(name)
        assert (config.epochs, config.steps_per_epoch, config.batch_size, config.augment.crop_size, config.eval_size) == (
            preset.epochs, preset.steps_per_epoch, preset.batch_size, preset.crop_size, preset.val_size), name
        described = preset.describe(name)
        assert described["device"] in DEVICES and described["budget"] == preset.budget and described["measured_text"]
        assert (described["measured"] is None) == (preset.measured is None)
    assert "not measured at this budget" in TRAIN_PRESETS["web-336"].measured_text and "gpu-336" in TRAIN_PRESETS["web-336"].measured_text
    with pytest.raises(ValueError, match="device must be one of gpu, cpu, tests"):
        replace(TRAIN_PRESETS["tiny"], device="tpu")
    with pytest.raises(ValueError, match="keep must be one of best-val, last, got 'best'"):  # at definition
        replace(TRAIN_PRESETS["cpu-224-longer"], keep="best")
    with pytest.raises(ValueError, match="unknown train preset 'huge'; known: tiny, cpu-224, cpu-224-long, cpu-224-longer, gpu-336"):
        train_config("huge")


def test_a_gpu_preset_without_cuda_is_refused_with_what_to_do():
    said = cuda_refusal("gpu-336", "auto", cuda_available=False)
    assert "'gpu-336' is meant for a GPU" in said and "cpu-224" in said and '"device": "cpu"' in said
    assert cuda_refusal("gpu-336", "auto", cuda_available=True) is None
    assert cuda_refusal("gpu-336", "cpu", cuda_available=False) is None  # asked for the CPU: it runs there
    assert cuda_refusal("web-336", "auto", cuda_available=False) is not None
    assert cuda_refusal("cpu-224", "auto", cuda_available=False) is None
    assert cuda_refusal("tiny", "auto", cuda_available=False) is None
    assert "ask for device 'cuda:0'" in cuda_refusal("cpu-224", "cuda:0", cuda_available=False)


# ------------------------------------------------------------------------------------------------
# The platform: API, job, commands, page
# ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_api_lists_the_presets_accepts_each_and_names_the_known_ones_for_an_unknown_one(client_for):
    nail_snapshot("small", participants=2, per_participant=1)
    reviewer, admin = client_for("reviewer"), client_for("admin")
    listed = reviewer.get("/api/training-runs/presets/")
    assert listed.status_code == 200
    assert [p["name"] for p in listed.json()] == list(TRAIN_PRESETS)
    cpu = next(p for p in listed.json() if p["name"] == "cpu-224")
    assert cpu["device"] == "cpu" and cpu["budget"] == TRAIN_PRESETS["cpu-224"].budget
    assert cpu["measured"]["section"] == "cv-cpu-input"
    assert client_for("annotator").get("/api/training-runs/presets/").status_code == 403
    for name in TRAIN_PRESETS:
        started = admin.post("/api/training-runs/", {"snapshot": "small", "preset": name}, format="json")
        assert started.status_code == 202, (name, started.json())
        assert TrainingRun.objects.get(pk=started.json()["training_run"]).preset == name
    refused = admin.post("/api/training-runs/", {"snapshot": "small", "preset": "huge"}, format="json")
    assert refused.status_code == 400
    assert refused.json()["preset"] == [f"\"huge\" is not a train preset; known: {', '.join(TRAIN_PRESETS)}"]
    default = admin.post("/api/training-runs/", {"snapshot": "small", "epochs": 1}, format="json")
    assert TrainingRun.objects.get(pk=default.json()["training_run"]).preset == DEFAULT_TRAIN_PRESET


@pytest.mark.django_db
def test_the_job_and_the_commands_take_their_presets_from_the_one_place():
    nail_snapshot("small", participants=2, per_participant=1)
    validate = get_job_kind("train").validate
    assert validate({"snapshot": "small", "preset": "cpu-224"})["preset"] == "cpu-224"
    with pytest.raises(JobArgumentError, match=f"preset must be one of {', '.join(TRAIN_PRESETS)}, not 'huge'"):
        validate({"snapshot": "small", "preset": "huge"})
    from training.management.commands import ablation, train

    for command in (train.Command(), ablation.Command()):
        parser = command.create_parser("manage.py", command.__module__.rsplit(".", 1)[1])
        preset = next(a for a in parser._actions if a.dest == "preset")
        assert list(preset.choices) == list(TRAIN_PRESETS), command


@pytest.mark.django_db
@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: a GPU preset runs here")
def test_a_gpu_preset_on_a_machine_without_cuda_fails_at_once_saying_so(client_for):
    nail_snapshot("small", participants=2, per_participant=1)
    with pytest.raises(CommandError, match="CudaUnavailable: preset 'gpu-336' is meant for a GPU .* Pick a CPU preset"):
        call_command("train", "--snapshot", "small", "--preset", "gpu-336", stdout=StringIO())
    job = Job.objects.get(kind="train")
    assert job.status == "failed" and not TrainingRun.objects.exists()  # nothing trained, no run left behind
    # Started from the page (the API), the run is listed as failed with the reason, as a worker without CUDA leaves it.
    from jobs.runner import execute_job

    admin = client_for("admin")
    started = admin.post("/api/training-runs/", {"snapshot": "small", "preset": "web-336"}, format="json")
    assert execute_job(started.json()["id"]).status == "failed"
    run = admin.get(f"/api/training-runs/{started.json()['training_run']}/").json()
    assert run["status"] == "failed" and run["history"] == []
    assert run["job"]["error"].startswith("CudaUnavailable: preset 'web-336' is meant for a GPU")
    # Asked for the CPU in the overrides, the same preset is not refused (here: validated and queued only).
    assert admin.post("/api/training-runs/", {"snapshot": "small", "preset": "gpu-336", "overrides": {"device": "cpu"}},
                      format="json").status_code == 202


@pytest.mark.django_db
def test_the_training_page_shows_every_preset_with_its_device_budget_and_figure(client, users, monkeypatch):
    nail_snapshot("small", participants=2, per_participant=1)
    client.force_login(users["admin"])

    def shown(page: str, name: str) -> bool:
        preset = TRAIN_PRESETS[name]
        return all(part in page for part in (
            f'<option value="{name}"', f'data-preset="{name}"', html.escape(preset.budget),
            html.escape(preset.measured_text), html.escape(DEVICES[preset.device]), html.escape(preset.purpose)))

    page = client.get("/training/").content.decode()
    assert all(shown(page, name) for name in TRAIN_PRESETS)
    assert f'<option value="{DEFAULT_TRAIN_PRESET}" selected>' in page
    # A preset added to ml/ is on the page with nothing else edited; one the page did not list would fail above.
    monkeypatch.setitem(TRAIN_PRESETS, "gpu-512", replace(TRAIN_PRESETS["gpu-336"], crop_size=512, purpose="bigger crops"))
    page = client.get("/training/").content.decode()
    assert shown(page, "gpu-512") and "512x512" in page
    assert not shown(page.replace('<option value="gpu-512"', ""), "gpu-512")


def docs_problems(text: str, where: str) -> list[str]:
    """Presets missing from a document's presets table (a row "| `name` | device |"), or whose row lacks a
    figure the preset quotes."""
    problems = []
    for name, preset in TRAIN_PRESETS.items():
        row = next((line for line in text.splitlines() if line.strip().startswith(f"| `{name}` | {preset.device} |")), None)
        if row is None:
            problems.append(f"{where}: no row for {name} ({preset.device})")
        elif preset.measured:
            problems += [f"{where}: the {name} row lacks {v}" for v in re.findall(r"\d+\.\d+", preset.measured.figure)
                         if v not in row]
    return problems


@pytest.mark.parametrize("doc", ["README.md", "docs/model.md"])
def test_the_presets_tables_in_the_docs_list_every_preset_with_its_figures(doc):
    text = (ROOT / doc).read_text()
    assert docs_problems(text, doc) == []
    assert docs_problems(text.replace("| `cpu-224` | cpu |", "| `cpu-224` | gpu |"), doc) == [f"{doc}: no row for cpu-224 (cpu)"]
    assert docs_problems(text.replace("72.0 ± 2.1", "70.0 ± 2.1"), doc) == [f"{doc}: the cpu-224 row lacks 72.0"]
