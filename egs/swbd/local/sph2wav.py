#!/usr/bin/env python3
"""Write one channel of a NIST SPHERE file to stdout as 16-bit WAV (a wav.scp pipe command).

Used in wav.scp when sph2pipe is not installed: `python sph2wav.py -c 2 sw02001.sph |`.
Reads through libsndfile, so it handles uncompressed SPHERE (PCM, mu-law, A-law) only;
shorten-compressed files need sph2pipe. Needs only soundfile (no PYTHONPATH).
"""

import argparse
import io
import sys

import soundfile as sf


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-c", "--channel", type=int, default=1, help="channel to write (1-based)")
    ap.add_argument("sph", help="input .sph file")
    args = ap.parse_args()
    try:
        data, sr = sf.read(args.sph, dtype="int16", always_2d=True)
    except Exception as e:  # libsndfile raises several types
        print(f"sph2wav: cannot read {args.sph}: {e}", file=sys.stderr)
        return 1
    if not 1 <= args.channel <= data.shape[1]:
        print(f"sph2wav: {args.sph}: channel {args.channel} not in 1..{data.shape[1]}",
              file=sys.stderr)
        return 1
    buf = io.BytesIO()  # a seekable buffer: libsndfile writes a pipe's WAV header wrongly
    sf.write(buf, data[:, args.channel - 1], sr, format="WAV", subtype="PCM_16")
    sys.stdout.buffer.write(buf.getvalue())
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
