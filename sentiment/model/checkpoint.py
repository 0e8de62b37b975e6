"""One checkpoint file holds everything needed to predict: configs, vocabulary, weights, metrics, data origin.

Files are written atomically (a temporary file in the same folder, then `os.replace`), so a crash or a
stopped run never leaves a half-written checkpoint in place of a good one, and they are read with
`torch.load(weights_only=True)`, which refuses pickled code. Weights are stored in half precision (half the file;
rounding a weight to 11 significant bits moves no prediction that matters) and computed with in float32.
"""
from __future__ import annotations

import os
import pickle
import re
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch

from ..config import ConfigError, UserError
from ..data.preprocessing import PREPROCESSING_VERSION, Vocab
from .network import ModelConfig, SentimentNet

FORMAT = "lstm-sentiment-lab"
# 3: weights in float16 and the model config names its readout; 2: float32, the config names its cell type;
# 1: LSTM only, its layers named `lstm.*` (they are `rnn.*` since). Every older version still loads.
FORMAT_VERSION = 3
STORED_DTYPE = torch.float16
CHECKPOINT_DIR = Path(__file__).resolve().parents[2] / "checkpoints"
DEFAULT_CHECKPOINT = CHECKPOINT_DIR / "default.pt"
_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once at import: os.umask can only be read by setting it


class CheckpointError(UserError, ValueError):
    """A file that is not a checkpoint we can use, with a message meant for a person."""


@dataclass
class Checkpoint:
    model_config: ModelConfig
    train_config: dict
    vocab: Vocab
    state_dict: dict[str, torch.Tensor]
    metrics: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    created: str = ""
    # A language model's file only (lm/, `language_model_path`): the pre-training's output projection (projection.weight
    # (E, H), projection.bias (E,)); with the layers and embedding it predicts the next token
    # (`SentimentNet.next_token_logits`).
    language_model: dict[str, torch.Tensor] = field(default_factory=dict)

    def projection(self, device: torch.device | str = "cpu") -> torch.nn.Linear | None:
        """The language model's output projection, or None when the checkpoint carries none."""
        if not self.language_model:
            return None
        weight = self.language_model["projection.weight"]
        projection = torch.nn.Linear(weight.shape[1], weight.shape[0])
        projection.load_state_dict({k.removeprefix("projection."): v for k, v in self.language_model.items()})
        return projection.to(device).eval()

    @property
    def max_len(self) -> int:
        return int(self.train_config.get("max_len", 200))

    @property
    def preprocessing_note(self) -> str:
        """A sentence for a person when the checkpoint was trained on text that another version of the preprocessing
        read ("" when it is this program's version, or was not recorded: checkpoints before the record)."""
        trained_with = self.data.get("preprocessing_version")
        recorded = type(trained_with) is int  # a damaged file may hold anything here: a string, a tensor
        if trained_with is None or (recorded and trained_with == PREPROCESSING_VERSION):
            return ""
        shown = trained_with if recorded else repr(trained_with)[:20]
        return (f"This checkpoint was trained on text read by preprocessing version {shown}; this program reads "
                f"text with version {PREPROCESSING_VERSION}, so some words reach the model in another form than in "
                "training and its predictions may differ a little from its test report. Retrain it to match.")

    def build_model(self, device: torch.device | str = "cpu") -> SentimentNet:
        model = SentimentNet(self.model_config)
        model.load_state_dict(self.state_dict)  # float16 weights are copied into the float32 parameters
        return model.to(device).eval()


def stored(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The weights as a checkpoint stores them: on the CPU, floating-point tensors in STORED_DTYPE. The trainer keeps
    and tests these, so the test report describes the saved file exactly."""
    return {k: v.detach().to("cpu", STORED_DTYPE if v.is_floating_point() else v.dtype, copy=True)
            for k, v in state_dict.items()}


def save_checkpoint(path: str | Path, checkpoint: Checkpoint) -> Path:
    """Write atomically: readers see the old file or the new one, never a partial one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_config": asdict(checkpoint.model_config),
        "train_config": dict(checkpoint.train_config),
        "vocab": checkpoint.vocab.to_dict(),
        "state_dict": stored(checkpoint.state_dict),
        "metrics": checkpoint.metrics,
        "data": checkpoint.data,
        "language_model": stored(checkpoint.language_model),
        "created": checkpoint.created or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "torch_version": str(torch.__version__),
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes the file private (0600); a checkpoint is an ordinary file
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint safely; anything else (corrupt, foreign, newer format, pickled code) is a
    CheckpointError that says what is wrong."""
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise CheckpointError(f"{name}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        what = f" ({found.group(1)})" if found else ""
        raise CheckpointError(
            f"{name}: refused: the file holds Python code or objects{what} that only unsafe loading would run"
        ) from None
    except Exception:  # a damaged file can fail anywhere in the unpickler (IndexError, KeyError, RuntimeError…)
        raise CheckpointError(f"{name}: not a readable checkpoint (corrupt, truncated or another file type)") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{name}: not an LSTM Sentiment Lab checkpoint (a bare state_dict or another tool's file)")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{name}: checkpoint format version {version} is newer than this program reads ({FORMAT_VERSION}); update the app"
        )
    state_dict = payload.get("state_dict")
    if version == 1 and isinstance(state_dict, dict):
        state_dict = {re.sub(r"^lstm\.", "rnn.", k): v for k, v in state_dict.items()}
    if not all(isinstance(payload.get(part, {}), dict) for part in ("metrics", "data", "language_model")):
        raise CheckpointError(f"{name}: checkpoint is incomplete or damaged (its metrics, data or language model are not "
                              "a table)")
    language_model = payload.get("language_model", {})
    config = payload.get("model_config")
    shapes = ((config.get("embedding_dim"), config.get("hidden_size")), (config.get("embedding_dim"),)) \
        if isinstance(config, dict) else None
    if language_model and (set(language_model) != {"projection.weight", "projection.bias"}
                           or not all(isinstance(v, torch.Tensor) for v in language_model.values())
                           or (tuple(language_model["projection.weight"].shape),
                               tuple(language_model["projection.bias"].shape)) != shapes):
        raise CheckpointError(f"{name}: checkpoint is incomplete or damaged (its language model is not a projection "
                              "from the hidden state to the embedding)")
    try:
        return Checkpoint(
            model_config=ModelConfig.from_dict(payload["model_config"]),
            train_config=dict(payload["train_config"]),
            vocab=Vocab.from_dict(payload["vocab"]),
            state_dict=state_dict,
            metrics=payload.get("metrics", {}),
            data=payload.get("data", {}),
            created=payload.get("created", ""),
            language_model=language_model,
        )
    except (KeyError, TypeError, ValueError, ConfigError) as e:
        raise CheckpointError(f"{name}: checkpoint is incomplete or damaged ({e})") from None


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,100}\.pt")


def list_checkpoints(directory: Path = CHECKPOINT_DIR) -> list[str]:
    """Checkpoint file names in `directory`, the shipped default first, then newest first."""
    files = [p for p in directory.glob("*.pt") if p.is_file() and _NAME.fullmatch(p.name)]
    files.sort(key=lambda p: (p.name != DEFAULT_CHECKPOINT.name, -p.stat().st_mtime))
    return [p.name for p in files]


def _name_problem(name: object) -> str:
    """What breaks the checkpoint-name rule (a file of this folder: a letter or digit, then up to 100 letters, digits,
    '_', '.' or '-', then .pt; no '..'), or "" for a good name."""
    if not isinstance(name, str):
        return f"a checkpoint name is text, like model.pt; got {type(name).__name__}"
    if not name:
        return "choose a checkpoint file, like model.pt"
    if "/" in name or "\\" in name or ".." in name:
        return "a checkpoint is a file of the checkpoints folder, named without folders or '..'"
    if not name.endswith(".pt"):
        return "a checkpoint's file name ends in .pt"
    if not name[0].isascii() or not name[0].isalnum():
        return "a checkpoint's file name starts with a letter or a digit (a-z, A-Z, 0-9)"
    if len(name) > 104:
        return f"a checkpoint's file name has at most 104 characters; this one has {len(name):,}"
    if not _NAME.fullmatch(name):
        return "a checkpoint's file name holds only letters and digits (a-z, A-Z, 0-9), '_', '.' and '-'"
    return ""


def language_model_path(checkpoint: Path) -> Path:
    """Where a checkpoint's language model (the model as pre-training left it) is kept: lm/ beside it."""
    return checkpoint.parent / "lm" / checkpoint.name


def resolve_checkpoint(name: str, directory: Path = CHECKPOINT_DIR) -> Path:
    """The path of checkpoint `name` inside `directory`; anything that is not a plain .pt name is refused."""
    problem = _name_problem(name)
    if problem:
        raise CheckpointError(f"{str(name)[:80]!r} is not a checkpoint name: {problem}")
    path = directory / name
    if not path.is_file():
        raise CheckpointError(f"{name}: no such checkpoint in {directory.name}/")
    return path
