"""Corpus readers on small clips rendered in GRID, TCD-TIMIT and folder layouts."""

import shutil

import numpy as np
import pytest
import soundfile

from keras_autalk.corpora.readers import (
    Utterance,
    natural_key,
    read_corpus,
    read_folder,
    read_grid,
    read_tcd_timit,
)
from keras_autalk.errors import AutalkError
from keras_autalk.media import ffmpeg
from keras_autalk.media.au_labels import read_openface_csv, write_openface_csv
from keras_autalk.media.video import read_video, video_info, write_video

FPS = 25
NUM_FRAMES = 10
SIZE = 64
# GRID's word alignments: "start end word", times in 1/25000 s (1000 per frame).
ALIGN_TEXT = (
    "0 2000 sil\n2000 4000 bin\n4000 5000 blue\n5000 6000 at\n"
    "6000 7000 f\n7000 8000 two\n8000 9000 now\n9000 10000 sil\n"
)


def moving_block_frames(seed=0):
    """A grey clip with a coloured block sliding right."""
    rng = np.random.default_rng(seed)
    frames = np.full((NUM_FRAMES, SIZE, SIZE, 3), 90, dtype=np.uint8)
    for index in range(NUM_FRAMES):
        frames[index, 20:40, 4 + 3 * index : 24 + 3 * index] = rng.integers(150, 255, 3)
    return frames


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """One MP4 (write_video), one GRID-style MPG (MPEG-1 + MP2), one wav."""
    folder = tmp_path_factory.mktemp("media")
    duration = NUM_FRAMES / FPS
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(int(16000 * duration)) / 16000)
    mp4 = folder / "clip.mp4"
    write_video(
        mp4,
        moving_block_frames(),
        FPS,
        audio=tone.astype(np.float32),
        sample_rate=16000,
        preset="ultrafast",
    )
    mpg = folder / "clip.mpg"
    ffmpeg.run_ffmpeg(
        [
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc=size={SIZE}x{SIZE}:rate={FPS}",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100",
            "-frames:v",
            str(NUM_FRAMES),
            "-t",
            str(duration),
            "-c:v",
            "mpeg1video",
            "-q:v",
            "4",
            "-c:a",
            "mp2",
            "-b:a",
            "128k",
            "-f",
            "mpeg",
            str(mpg),
        ]
    )
    wav = folder / "clip.wav"
    times = np.arange(int(25000 * duration)) / 25000  # GRID's audio_25k rate
    soundfile.write(wav, 0.3 * np.sin(2 * np.pi * 220 * times), 25000)
    csv = folder / "clip.csv"
    write_openface_csv(csv, np.full((NUM_FRAMES, 2), 1.5), (25, 26), fps=FPS)
    return {"mp4": mp4, "mpg": mpg, "wav": wav, "csv": csv}


def place(source, target):
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


def write_text(target, text):
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return target


@pytest.fixture(scope="module")
def grid_root(tmp_path_factory, media):
    """Three speakers in GRID's three download layouts, plus clutter."""
    root = tmp_path_factory.mktemp("grid")
    # s1: videos beside an align/ folder, separate audio in audio_25k/, AU CSVs.
    for utterance_id in ("bbaf2n", "lgaz8p"):
        place(media["mpg"], root / "s1" / f"{utterance_id}.mpg")
        write_text(root / "s1" / "align" / f"{utterance_id}.align", ALIGN_TEXT)
        place(media["wav"], root / "audio_25k" / "s1" / f"{utterance_id}.wav")
    place(media["csv"], root / "s1" / "au" / "bbaf2n.csv")
    # s2: the mpg_6000 layout with alignments/ at the root, audio in s2/audio.
    place(media["mpg"], root / "s2" / "video" / "mpg_6000" / "pwij3s.mpg")
    write_text(root / "alignments" / "s2" / "pwij3s.align", ALIGN_TEXT)
    place(media["wav"], root / "s2" / "audio" / "pwij3s.wav")
    # s10: MP4 videos with align/s10/ at the root; one without an alignment.
    place(media["mp4"], root / "s10" / "sbaa1a.mp4")
    place(media["mp4"], root / "s10" / "sbaa2s.mp4")
    write_text(root / "align" / "s10" / "sbaa1a.align", ALIGN_TEXT)
    # Clutter a reader must ignore.
    write_text(root / "s1" / "README.txt", "GRID corpus speaker 1\n")
    place(media["mpg"], root / "s1" / ".bbaf2n.partial.mpg")  # interrupted copy
    write_text(root / "s1" / "align" / "swwv9a.align", ALIGN_TEXT)  # no video
    place(media["wav"], root / "audio_25k" / "s7" / "bgaa1a.wav")  # no speaker
    (root / "s3").mkdir()  # speaker folder without videos
    write_text(root / "docs" / "notes.md", "# notes\n")
    return root


def test_grid_pairs_video_align_audio_and_csv_per_speaker(grid_root):
    utterances = read_grid(grid_root)
    assert [u.key for u in utterances] == [
        "s1/bbaf2n",
        "s1/lgaz8p",
        "s2/pwij3s",
        "s10/sbaa1a",
        "s10/sbaa2s",
    ]
    by_key = {u.key: u for u in utterances}
    first = by_key["s1/bbaf2n"]
    assert first == Utterance(
        corpus="grid",
        speaker="s1",
        utterance_id="bbaf2n",
        video_path=grid_root / "s1" / "bbaf2n.mpg",
        audio_path=grid_root / "audio_25k" / "s1" / "bbaf2n.wav",
        align_path=grid_root / "s1" / "align" / "bbaf2n.align",
        au_csv_path=grid_root / "s1" / "au" / "bbaf2n.csv",
    )
    assert by_key["s1/lgaz8p"].au_csv_path is None
    second = by_key["s2/pwij3s"]
    assert second.video_path == grid_root / "s2" / "video" / "mpg_6000" / "pwij3s.mpg"
    assert second.align_path == grid_root / "alignments" / "s2" / "pwij3s.align"
    assert second.audio_path == grid_root / "s2" / "audio" / "pwij3s.wav"
    assert by_key["s10/sbaa1a"].align_path == grid_root / "align" / "s10" / "sbaa1a.align"
    assert by_key["s10/sbaa2s"].align_path is None
    assert by_key["s10/sbaa2s"].audio_path is None


def test_grid_files_found_are_the_real_media(grid_root):
    utterance = read_grid(grid_root)[0]
    clip = read_video(utterance.video_path)
    assert clip.frames.shape == (NUM_FRAMES, SIZE, SIZE, 3)
    assert clip.fps == FPS and clip.audio is not None
    info = video_info(utterance.video_path)
    assert (info.video_codec, info.audio_codec) == ("mpeg1video", "mp2")
    audio, rate = soundfile.read(utterance.audio_path)
    assert rate == 25000 and len(audio) == 10000
    first_word = utterance.align_path.read_text().splitlines()[1].split()
    assert first_word == ["2000", "4000", "bin"]
    labels = read_openface_csv(utterance.au_csv_path, (25, 26), num_frames=NUM_FRAMES)
    np.testing.assert_allclose(labels.intensity, 1.5)


def test_demo_corpus_reads_through_the_grid_reader(grid_root):
    demo = read_corpus("demo", grid_root)
    grid = read_corpus("grid", grid_root)
    assert {u.corpus for u in demo} == {"demo"}
    assert [u.key for u in demo] == [u.key for u in grid]
    assert [u.video_path for u in demo] == [u.video_path for u in grid]


def test_tcd_timit_reads_straightcam_of_volunteers_and_lipspeakers(tmp_path, media):
    root = tmp_path / "TCD-TIMIT"
    for speaker, names in (
        ("volunteers/01M", ("sa1", "sx10", "sa2")),
        ("volunteers/02F", ("si1000",)),
        ("lipspeakers/Lipspkr1", ("sa1",)),
    ):
        for name in names:
            place(media["mp4"], root / speaker / "straightcam" / f"{name}.mp4")
    place(media["mp4"], root / "volunteers" / "01M" / "30degcam" / "sa1.mp4")
    place(media["wav"], root / "volunteers" / "01M" / "straightcam" / "sa1.wav")
    place(media["csv"], root / "volunteers" / "01M" / "straightcam" / "au" / "sa2.csv")
    write_text(root / "volunteers" / "01M" / "straightcam" / "sa1.txt", "phones\n")
    write_text(root / "README.txt", "TCD-TIMIT\n")

    utterances = read_tcd_timit(root)
    assert [u.key for u in utterances] == [
        "lipspeakers/Lipspkr1/sa1",
        "volunteers/01M/sa1",
        "volunteers/01M/sa2",
        "volunteers/01M/sx10",
        "volunteers/02F/si1000",
    ]
    assert {u.corpus for u in utterances} == {"tcd-timit"}
    by_key = {u.key: u for u in utterances}
    sa1 = by_key["volunteers/01M/sa1"]
    assert sa1.video_path == root / "volunteers" / "01M" / "straightcam" / "sa1.mp4"
    assert sa1.audio_path == root / "volunteers" / "01M" / "straightcam" / "sa1.wav"
    assert sa1.align_path is None and sa1.au_csv_path is None
    assert by_key["volunteers/01M/sa2"].au_csv_path == (
        root / "volunteers" / "01M" / "straightcam" / "au" / "sa2.csv"
    )
    assert by_key["lipspeakers/Lipspkr1/sa1"].audio_path is None
    assert read_corpus("tcd-timit", root) == utterances
    assert video_info(by_key["volunteers/02F/si1000"].video_path).num_frames == NUM_FRAMES


def test_folder_reads_videos_recursively_with_speaker_from_folder(tmp_path, media):
    root = tmp_path / "talks"
    place(media["mp4"], root / "alice" / "intro.mp4")
    place(media["mp4"], root / "alice" / "Outro.MOV")
    place(media["csv"], root / "alice" / "intro.csv")
    place(media["wav"], root / "alice" / "intro.wav")
    place(media["mpg"], root / "bob" / "2023" / "talk.mpg")
    place(media["mp4"], root / "bob" / "2023" / "talk.mkv")  # same name, other container
    place(media["mp4"], root / "solo.mp4")
    place(media["mp4"], root / ".cache" / "hidden.mp4")
    place(media["mp4"], root / "alice" / ".intro.partial.mp4")
    write_text(root / "alice" / "notes.txt", "not a video\n")
    place(media["wav"], root / "carol" / "voice.wav")  # audio only: no utterance

    utterances = read_folder(root)
    assert [u.key for u in utterances] == [
        "alice/intro",
        "alice/Outro",
        "bob/2023/talk.mkv",
        "bob/2023/talk.mpg",
        "talks/solo",
    ]
    by_key = {u.key: u for u in utterances}
    intro = by_key["alice/intro"]
    assert intro.corpus == "folder"
    assert intro.au_csv_path == root / "alice" / "intro.csv"
    assert intro.audio_path == root / "alice" / "intro.wav"
    assert by_key["alice/Outro"].audio_path is None
    assert by_key["talks/solo"].video_path == root / "solo.mp4"
    assert read_corpus("folder", root) == utterances


def test_reading_is_deterministic_and_naturally_sorted(tmp_path, media):
    # The same files created in two different orders read back identically.
    names = ["s10", "s2", "s1", "s33"]
    roots = []
    for order, label in ((names, "first"), (names[::-1], "second")):
        root = tmp_path / label
        for speaker in order:
            for utterance_id in ("swwz9a", "bbaf2n", "lgaz10p", "lgaz8p"):
                place(media["mp4"], root / speaker / f"{utterance_id}.mp4")
        roots.append(root)
    first, second = (read_grid(root) for root in roots)
    assert [u.key for u in first] == [u.key for u in second]
    assert [u.speaker for u in first][::4] == ["s1", "s2", "s10", "s33"]
    assert [u.utterance_id for u in first][:4] == ["bbaf2n", "lgaz8p", "lgaz10p", "swwz9a"]
    assert read_grid(roots[0]) == first


def test_natural_key_orders_numbers_by_value():
    assert sorted(["s10", "s2", "S1", "s1a"], key=natural_key) == ["S1", "s1a", "s2", "s10"]


@pytest.mark.parametrize("kind", ["grid", "demo", "tcd-timit", "folder"])
def test_missing_empty_or_unrelated_root_is_one_sentence(tmp_path, kind):
    missing = tmp_path / "nowhere"
    with pytest.raises(AutalkError, match="does not exist") as error:
        read_corpus(kind, missing)
    messages = [str(error.value)]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AutalkError, match="No .*videos were found") as error:
        read_corpus(kind, empty)
    messages.append(str(error.value))
    cluttered = tmp_path / "cluttered"
    write_text(cluttered / "s1" / "align" / "bbaf2n.align", ALIGN_TEXT)
    write_text(cluttered / "volunteers" / "01M" / "straightcam" / "sa1.txt", "x\n")
    write_text(cluttered / "notes.txt", "x\n")
    with pytest.raises(AutalkError, match="No .*videos were found"):
        read_corpus(kind, cluttered)
    a_file = write_text(tmp_path / "corpus.txt", "x\n")
    with pytest.raises(AutalkError, match="is a file, not a folder") as error:
        read_corpus(kind, a_file)
    messages.append(str(error.value))
    for message in messages:
        assert "\n" not in message and message.endswith(".")
        assert message.count(". ") == 0


def test_unknown_corpus_kind_lists_the_kinds(tmp_path):
    with pytest.raises(AutalkError, match="grid, tcd-timit, folder, demo"):
        read_corpus("lrs3", tmp_path)
