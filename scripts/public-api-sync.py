#!/usr/bin/env python3
"""Records a project's public API changes: reads a build log's RS0016 (new symbol) and RS0017 (removed symbol)
errors and writes them into that project's PublicAPI.Unshipped.txt (a removal of a shipped symbol as *REMOVED*).
Usage: dotnet build src/X/X.csproj 2>&1 | scripts/public-api-sync.py"""
import os, re, sys

added, removed = {}, {}
for line in sys.stdin:
    m = re.search(r"(RS001[67]): Symbol '(.*)' is (?:not part of the declared public API|part of the declared API, but is either not public or could not be found).*\[(.*\.csproj)\]", line)
    if m:
        (added if m.group(1) == "RS0016" else removed).setdefault(os.path.dirname(m.group(3)), set()).add(m.group(2))

for project in sorted(set(added) | set(removed)):
    shipped_path, unshipped_path = (os.path.join(project, f) for f in ("PublicAPI.Shipped.txt", "PublicAPI.Unshipped.txt"))
    shipped = open(shipped_path).read().splitlines()
    unshipped = open(unshipped_path).read().splitlines()
    for symbol in removed.get(project, ()):
        if symbol in unshipped:
            unshipped.remove(symbol)
        elif symbol in shipped:
            unshipped.append("*REMOVED*" + symbol)
    unshipped += [s for s in added.get(project, ()) if s not in unshipped]
    header = [l for l in unshipped if l.startswith("#")]
    body = sorted({l for l in unshipped if l and not l.startswith("#")}, key=lambda l: l.removeprefix("*REMOVED*"))
    open(unshipped_path, "w").write("\n".join(header + body) + "\n")
    print(f"{unshipped_path}: {len(added.get(project, ()))} added, {len(removed.get(project, ()))} removed")
