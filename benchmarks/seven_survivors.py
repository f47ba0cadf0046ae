"""The seven one-line mutations the layers issue found no test catching, applied one at a time to the working tree
(each restored after): prints whether the tests now kill each.

    python benchmarks/seven_survivors.py
"""

import subprocess

cases = [
    (
        "crossover no-op",
        "specialize/search/ga.py",
        "    return np.where(head, pairs, pairs[:, :, ::-1])",
        "    return np.where(head, pairs, pairs)",
        "tests/test_ga_operators.py",
    ),
    (
        "mutation rate 0",
        "specialize/search/ga.py",
        "POPULATION, PARENTS, MUTATION = 20, 10, 0.1",
        "POPULATION, PARENTS, MUTATION = 20, 10, 0.0",
        "tests/test_ga_operators.py",
    ),
    (
        "weights once per image",
        "specialize/cost.py",
        "        return dtype_bytes * (self.params + batch * (self.in_elems + self.out_elems))",
        "        return dtype_bytes * batch * (self.params + self.in_elems + self.out_elems)",
        "tests/test_cost.py",
    ),
    (
        "peak drops the residual",
        "specialize/cost.py",
        "        return dtype_bytes * batch * (self.in_elems + self.out_elems + self.held_elems)",
        "        return dtype_bytes * batch * (self.in_elems + self.out_elems)",
        "tests/test_cost.py",
    ),
    (
        "strategy gap sign",
        "specialize/api/__init__.py",
        "max(reference.value - own.value, 0.0)",
        "max(own.value - reference.value, 0.0)",
        "tests/test_api.py",
    ),
    (
        "scale not on fixed parts",
        "hw_profiles/profile.py",
        "return scale * self.latency_ms, scale * sum(self.fixed_ms.values()) + offset",
        "return scale * self.latency_ms, sum(self.fixed_ms.values()) + offset",
        "tests/test_hw_registry.py",
    ),
    (
        "recalibration skipped",
        "supernet/export.py",
        "    count = recalibrate(module, batches)",
        "    count = sum(len(b) for b in batches)",  # still reports the images, sets no statistics
        "tests/test_export.py",
    ),
]
for name, path, old, new, test in cases:
    src = open(path).read()
    assert old in src, (name, old)
    open(path, "w").write(src.replace(old, new))
    try:
        r = subprocess.run(
            [".venv/bin/python", "-m", "pytest", "-q", "-x", test], capture_output=True, text=True, timeout=900
        )
        last = r.stdout.strip().splitlines()[-1]
        print(f"{name:28s} {'killed' if r.returncode else 'SURVIVED'}  ({last})", flush=True)
    finally:
        open(path, "w").write(src)
