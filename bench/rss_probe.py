"""Peak resident memory of our pipeline for one stream size, measured in a fresh process.

    python -m bench.rss_probe 2048      # MiB of plaintext through encrypt + upload (null transport)
Prints one JSON object: {"size_mib", "peak_rss_mib", "seconds"}.
"""

from __future__ import annotations

import json
import resource
import sys
import time

from cryptography.hazmat.primitives.asymmetric import rsa

from bench.null_transport import NullTransport
from bench.sources import MiB, chunks
from shared.crypto.jwk import public_jwk
from shared.upload.uploader import EncryptedBlobUploader

NULL_SAS = "https://bench.blob.core.windows.net/bench/file.mp4?sv=2025-01-05&sig=bench"


def main() -> None:
    size_mib = int(sys.argv[1])
    jwk = public_jwk(rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key(), "bench")
    uploader = EncryptedBlobUploader(transport=NullTransport())
    started = time.perf_counter()
    uploader.upload(NULL_SAS, jwk, chunks(size_mib * MiB), size_hint=size_mib * MiB)
    elapsed = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"size_mib": size_mib, "peak_rss_mib": round(peak_kib / 1024, 1), "seconds": elapsed}))


if __name__ == "__main__":
    main()
