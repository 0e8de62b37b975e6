"""The repository as a Hugging Face Space receives it: the README's front matter, and the exact files the README's
one deploy command sends, their sizes and their LFS coverage."""
from __future__ import annotations

import fnmatch
import re
import shlex
from pathlib import Path

from huggingface_hub import metadata_load
from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, filter_repo_objects

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 10 * 2**20  # the Hub refuses a plain git file over 10 MiB
COLOURS = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}  # the Spaces configuration reference
BINARY = (".pt", ".bz2", ".gz", ".png", ".jpg")


def deploy_command() -> list[str]:
    """The README's `hf upload` command, its backslash-continued lines joined."""
    text = (ROOT / "README.md").read_text()
    match = re.search(r"^\s*(hf upload (?:.*\\\n)*.*)$", text, flags=re.MULTILINE)
    assert match, "the README documents no `hf upload` command"
    return shlex.split(match.group(1).replace("\\\n", " "))


def uploaded_files(command: list[str], folder: Path = ROOT) -> list[str]:
    """What `hf upload <repo> . --repo-type space --include … --exclude …` sends from `folder`: every file under it,
    filtered by the command's patterns and the ones huggingface_hub always adds (as HfApi.upload_folder does)."""
    assert command[:2] == ["hf", "upload"] and command[3] == "." and "--repo-type" in command
    assert command[command.index("--repo-type") + 1] == "space"
    includes = [command[i + 1] for i, word in enumerate(command) if word == "--include"]
    excludes = [command[i + 1] for i, word in enumerate(command) if word == "--exclude"]
    files = [p.relative_to(folder).as_posix() for p in sorted(folder.glob("**/*")) if p.is_file()]
    return list(filter_repo_objects(files, allow_patterns=includes or None,
                                    ignore_patterns=excludes + DEFAULT_IGNORE_PATTERNS))


def lfs_patterns() -> list[str]:
    lines = (ROOT / ".gitattributes").read_text().splitlines()
    return [line.split()[0] for line in lines if "filter=lfs" in line and not line.startswith("#")]


def test_front_matter_follows_the_spaces_configuration_reference():
    meta = metadata_load(ROOT / "README.md")
    pin = re.search(r"^gradio(?:\[[^\]]*\])?==(\S+)$", (ROOT / "requirements.txt").read_text(), re.MULTILINE).group(1)
    assert meta["sdk"] == "gradio" and meta["sdk_version"] == pin
    assert re.fullmatch(r"3\.\d+", str(meta["python_version"]))
    assert (ROOT / meta["app_file"]).is_file()
    assert 0 < len(meta["short_description"]) <= 60
    assert meta["colorFrom"] in COLOURS and meta["colorTo"] in COLOURS
    # The bundled reviews come from the Amazon polarity data set, which the Hub lists as apache-2.0.
    assert meta["license"] == "apache-2.0"


def test_the_deploy_command_sends_the_app_and_nothing_over_the_limit_or_outside_lfs(tmp_path):
    # Things a working copy holds that must stay home: caches, test output, a checkpoint someone trained.
    for junk in ("sentiment/model/__pycache__/network.cpython-311.pyc", "test-artifacts/predict.png", "checkpoints/mine.pt",
                 ".pytest_cache/v/cache/nodeids", ".git/HEAD", "tests/test_space.py"):
        (tmp_path / junk).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / junk).write_bytes(b"x")
    sent = set(uploaded_files(deploy_command(), tmp_path))
    assert not sent, f"the command would send a working copy's junk: {sorted(sent)}"

    sent = uploaded_files(deploy_command())
    for needed in ("app.py", "requirements.txt", "README.md", ".gitattributes", "sentiment/model/network.py",
                   "sentiment/assets/amazon_reviews_sample.ft.txt.bz2", "sentiment/assets/typed_sentences.tsv",
                   "sentiment/assets/more/blitzer.ft.txt.bz2", "sentiment/ui/train.py",
                   "checkpoints/default.pt", "checkpoints/lstm.pt", "checkpoints/gru.pt", "checkpoints/rnn.pt",
                   "checkpoints/lm/default.pt"):
        assert needed in sent, needed
    assert not [f for f in sent if f.startswith(("tests/", ".ci/", ".git/")) or "__pycache__" in f]
    patterns = lfs_patterns()
    for name in sent:
        size = (ROOT / name).stat().st_size
        assert size <= LIMIT, f"{name} is {size / 2**20:.1f} MiB"
        if name.endswith(BINARY):
            assert any(fnmatch.fnmatch(Path(name).name, p) for p in patterns), f"{name} is binary but not under LFS"


def test_no_tracked_file_is_over_the_limit():
    import subprocess

    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True).stdout.split("\0")
    sizes = {name: (ROOT / name).stat().st_size for name in tracked if name and (ROOT / name).is_file()}
    assert sizes and max(sizes.values()) <= LIMIT, max(sizes, key=sizes.get)
