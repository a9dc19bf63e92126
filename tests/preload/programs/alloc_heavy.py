# Allocation-heavy Python workload for the preload tests: dicts, lists, strings, JSON, sorting,
# threads. Deterministic output.
import hashlib
import json
import random
import threading

rng = random.Random(12345)
words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 12)))
         for _ in range(20000)]
index = {}
for i, w in enumerate(words):
    index.setdefault(w[:3], []).append((w, i))
docs = [{"id": i, "tags": sorted(set(rng.sample(words, 5))), "score": rng.random()}
        for i in range(20000)]
blob = json.dumps(docs, sort_keys=True)
back = json.loads(blob)
assert back == docs
ranked = sorted(back, key=lambda d: (round(d["score"], 6), d["id"]))
text = " ".join(w.upper() for w in words) * 3
counts = {}
for w in text.split():
    counts[w] = counts.get(w, 0) + 1

results = [None] * 4
def worker(k):
    local = [str(x) * (x % 7) for x in range(k, 60000, 4)]
    results[k] = hashlib.sha256("".join(local).encode()).hexdigest()
threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()

h = hashlib.sha256()
h.update(blob.encode())
h.update(repr(ranked[:100]).encode())
h.update(repr(sorted(counts.items())[:1000]).encode())
print("prefixes", len(index))
print("docs", len(back), "chars", len(blob))
print("threads", results)
print("digest", h.hexdigest())
