"""Studio's forced aligner: times every word of known text in speech audio with PocketSphinx
(https://github.com/cmusphinx/pocketsphinx, PyPI `pocketsphinx`, whose wheel ships the US English
acoustic model and dictionary).

Reads one JSON request on stdin:
    {"wav": "/path/speech.wav", "sentences": [{"text": "…", "start": 0.0, "end": 2.5}, …]}
(16-bit PCM, any rate; each sentence's span of the audio in seconds) and prints one JSON line per
sentence, in order: {"words": [{"text", "start", "end"}, …]} with one entry per whitespace-separated
word of the text, in seconds from the start of its sentence's span.

How: each span is resampled to the model's 16 kHz and aligned against its words (written words
are lowercased and stripped of punctuation; hyphenated words are aligned part by part; words the
dictionary lacks get a spelling-based pronunciation). PocketSphinx's alignment search sometimes
gives up before the end of a span (synthetic voices such as espeak-ng trip it): the words it
placed are kept, less the last, and the rest is aligned again from there. Words no pass can
place share what is left of the span by their letters, so every word has a time.
`--version` prints the version of pocketsphinx.
"""

import json
import re
import sys
import wave

RATE = 16000
PAD = RATE * 3 // 10  # 0.3 s of silence each side: the search needs room to start and end
FRAME_S = 0.01  # PocketSphinx's default frame rate is 100 frames a second

LETTERS = [
    ("tch", "CH"), ("sch", "S K"), ("ch", "CH"), ("sh", "SH"), ("th", "TH"), ("ph", "F"),
    ("wh", "W"), ("ck", "K"), ("ng", "NG"), ("qu", "K W"), ("gh", ""), ("kn", "N"),
    ("ee", "IY"), ("ea", "IY"), ("oo", "UW"), ("ou", "AW"), ("ow", "OW"), ("ai", "EY"),
    ("ay", "EY"), ("oa", "OW"), ("oi", "OY"), ("oy", "OY"), ("au", "AO"), ("aw", "AO"),
    ("er", "ER"), ("ir", "ER"), ("ur", "ER"), ("ar", "AA R"), ("or", "AO R"),
    ("a", "AE"), ("b", "B"), ("c", "K"), ("d", "D"), ("e", "EH"), ("f", "F"), ("g", "G"),
    ("h", "HH"), ("i", "IH"), ("j", "JH"), ("k", "K"), ("l", "L"), ("m", "M"), ("n", "N"),
    ("o", "AA"), ("p", "P"), ("q", "K"), ("r", "R"), ("s", "S"), ("t", "T"), ("u", "AH"),
    ("v", "V"), ("w", "W"), ("x", "K S"), ("y", "IY"), ("z", "Z"),
]
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def version():
    from importlib.metadata import version as v

    import pocketsphinx  # noqa: F401

    return {"pocketsphinx": v("pocketsphinx")}


def spelled(word, decoder):
    """A pronunciation from spelling, for a word the dictionary lacks."""
    if word.isdigit():
        return " ".join(decoder.lookup_word(DIGITS[int(c)]) for c in word)
    w = re.sub(r"(.)\1", r"\1", word)  # doubled letters sound once
    if len(w) > 3 and w.endswith("e"):
        w = w[:-1]  # a final e is mostly silent
    phones = []
    i = 0
    while i < len(w):
        for letters, sound in LETTERS:
            if w.startswith(letters, i):
                phones.extend(sound.split())
                i += len(letters)
                break
        else:
            i += 1
    return " ".join(phones)


def dictionary_words(token, decoder):
    """The dictionary words `token` is spoken as (none for a dash or other punctuation)."""
    out = []
    for part in re.split(r"[-\u2010-\u2015/]+", token.lower()):
        part = part.replace("\u2019", "'")
        part = re.sub(r"[^a-z0-9']", "", part).strip("'")
        if not part:
            continue
        if decoder.lookup_word(part) is None:
            if part.endswith("'s") and decoder.lookup_word(part[:-2]) is not None:
                part = part[:-2]
            else:
                phones = spelled(part, decoder)
                if not phones:
                    continue
                decoder.add_word(part, phones, True)
        out.append(part)
    return out


def align_pass(decoder, samples, words):
    """Aligns `words` in `samples`: (start, end) seconds of each word placed, in order, which
    may be fewer than `words` when the search gave up."""
    import numpy as np

    padded = np.concatenate([np.zeros(PAD, np.int16), samples, np.zeros(PAD, np.int16)])
    decoder.set_align_text(" ".join(words))
    decoder.start_utt()
    decoder.process_raw(padded.tobytes(), full_utt=True)
    decoder.end_utt()
    placed = []
    for seg in decoder.seg() or []:
        word = seg.word.split("(")[0]
        if len(placed) < len(words) and word == words[len(placed)]:
            start = seg.start_frame * FRAME_S - PAD / RATE
            end = (seg.end_frame + 1) * FRAME_S - PAD / RATE
            placed.append((max(start, 0.0), max(end, 0.0)))
    return placed


def by_letters(words, start, end):
    """`words` sharing [start, end] by their letters."""
    weights = [max(len(w), 1) for w in words]
    total = sum(weights)
    out, at = [], start
    for w in weights:
        step = (end - start) * w / total
        out.append((at, at + step))
        at += step
    return out


def align_sentence(decoder, samples, text):
    import numpy as np

    tokens = text.split()
    parts = [dictionary_words(t, decoder) for t in tokens]
    flat = [w for p in parts for w in p]
    length = len(samples) / RATE
    times = []
    at = 0.0
    while len(times) < len(flat):
        rest = flat[len(times):]
        begin = int(at * RATE)
        placed = align_pass(decoder, samples[begin:], rest)
        if len(placed) < len(rest) and len(placed) > 1:
            placed = placed[:-1]  # the last word before the search gave up may be cut short
        if not placed:
            times.extend(by_letters(rest, at, length))
            break
        times.extend((s + at, e + at) for s, e in placed)
        at = times[-1][1]
    words = []
    i = 0
    last = 0.0
    for token, p in zip(tokens, parts):
        if p:
            start, end = times[i][0], times[i + len(p) - 1][1]
            i += len(p)
        else:
            start = end = last
        # Every word starts inside the span, before its end (a mark after the last word too).
        start = min(max(start, last), max(length - 0.01, 0.0))
        end = min(max(end, start), length)
        words.append({"text": token, "start": start, "end": end})
        last = end
    return words


def main():
    if "--version" in sys.argv:
        print(json.dumps(version()))
        return
    import numpy as np
    from pocketsphinx import Decoder

    request = json.load(sys.stdin)
    with wave.open(request["wav"]) as w:
        rate, channels = w.getframerate(), w.getnchannels()
        audio = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    if channels > 1:
        audio = audio.reshape(-1, channels).mean(axis=1).astype(np.int16)
    # Dither keeps the digital silence of synthetic voices from stalling the search; a fixed seed
    # keeps the result the same on every run.
    decoder = Decoder(samprate=RATE, dither=True, seed=1, loglevel="FATAL")
    for sentence in request["sentences"]:
        a = int(sentence["start"] * rate)
        b = int(sentence["end"] * rate)
        span = audio[a:b].astype(np.float64)
        n = int(len(span) * RATE / rate)
        samples = np.interp(np.arange(n) * rate / RATE, np.arange(len(span)), span)
        words = align_sentence(decoder, samples.astype(np.int16), sentence["text"]) if n else []
        for word in words:
            word["start"] = round(word["start"], 3)
            word["end"] = round(word["end"], 3)
        print(json.dumps({"words": words}), flush=True)


if __name__ == "__main__":
    main()
