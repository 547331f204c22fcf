"""Writes a fixture folder from scratch, or (--check) regenerates it into a temporary folder and
compares every file byte for byte with the committed one. Shared by the make_*_fixtures.py scripts."""
import filecmp
import os
import shutil
import tempfile


def ordered_matmul(a, b):
    """a [..., k] @ b [k, m] in float64, summed over k in index order with one rounding per product
    and one per sum: the same bits on every CPU, where a BLAS product's last bits follow the kernels
    the library picks for the machine (so a fixture written on one machine would fail --check on
    another)."""
    out = a[..., 0:1] * b[0]
    for i in range(1, b.shape[0]):
        out = out + a[..., i : i + 1] * b[i]
    return out


def regenerate_or_check(write_all, out, check, label):
    """write_all(folder) writes the fixtures. Returns the exit status (1 when --check finds a difference)."""
    if not check:
        if os.path.isdir(out):
            shutil.rmtree(out)
        os.makedirs(out)
        write_all(out)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        write_all(tmp)
        bad = []
        for root, _, files in os.walk(tmp):  # every fresh file has a byte-identical committed twin
            for fn in files:
                a = os.path.join(root, fn)
                b = os.path.join(out, os.path.relpath(a, tmp))
                if not os.path.exists(b) or not filecmp.cmp(a, b, shallow=False):
                    bad.append(os.path.relpath(a, tmp))
        for root, _, files in os.walk(out):  # and nothing committed is left over
            for fn in files:
                rel = os.path.relpath(os.path.join(root, fn), out)
                if not os.path.exists(os.path.join(tmp, rel)):
                    bad.append(rel)
        if bad:
            print("%s differ from a fresh run: %s" % (label, ", ".join(sorted(set(bad)))))
            return 1
    print("%s: byte-identical on regeneration" % label)
    return 0
