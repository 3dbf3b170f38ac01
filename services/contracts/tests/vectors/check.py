"""Recomputes each terms document's canonical JSON and SHA-256 with Python's standard library
alone, and compares them with the vectors: python3 check.py [directory]. Valid for Chorus terms
documents only (integers below 2^53, ASCII keys): see README.md."""
import hashlib
import json
import pathlib
import sys

here = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).parent)
failed = 0
names = sorted(p.name[: -len(".sha256")] for p in here.glob("*.sha256"))
for name in names:
    document = json.loads((here / f"{name}.json").read_text(encoding="utf-8"))
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    digest = hashlib.sha256(canonical).hexdigest()
    ok = canonical == (here / f"{name}.jcs").read_bytes() and digest == (here / f"{name}.sha256").read_text().strip()
    failed += not ok
    print(f"{'ok' if ok else 'MISMATCH'} {name} {digest}")
print(f"vectors: {len(names) - failed} ok, {failed} mismatched")
sys.exit(1 if failed or not names else 0)
