"""Copies "problems" records (measured GEMM plans) from a user database into a shipped database
file, under the entry for that device family and dtype, one record per line with a note saying
where each came from; a record for a problem already shipped replaces it.

    python bench/probes/ship_records.py USER_DB.json oclcore/gemm/database/nvidia.json \\
        --arch SM9.0 --note "inception_v3 infer b64, round 12" [--log gemms.log]

--log: a net_gemms.py log whose "tuned ... planner X us" lines add the planner's time to the notes.
"""
import argparse
import json
import re


def planner_times(log):
    """{problem key: the planner's microseconds} from net_gemms.py's "tuned" lines."""
    found = {}
    for line in open(log):
        m = re.match(r"tuned (.+?)(?: x\d+:)?\s+planner\s+([\d.]+) us", line)
        if m:
            found[m.group(1).strip()] = float(m.group(2))
    return found


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("user_db")
    p.add_argument("shipped")
    p.add_argument("--arch", required=True)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--note", required=True)
    p.add_argument("--log")
    a = p.parse_args()
    records = [r for e in json.load(open(a.user_db))["entries"]
               if e.get("arch") == a.arch and e.get("dtype") == a.dtype for r in e.get("problems", ())]
    before = planner_times(a.log) if a.log else {}
    text = open(a.shipped).read()
    shipped = json.loads(text)
    entry = next(e for e in shipped["entries"] if e.get("arch") == a.arch and e.get("dtype") == a.dtype
                 and "problems" in e)
    new_keys = {r["problem"] for r in records}
    kept = [r for r in entry["problems"] if r["problem"] not in new_keys]
    for r in records:
        note = a.note + (f": planner {before[r['problem']]:.1f} us" if r["problem"] in before else "")
        kept.append(dict(note=note, **{k: v for k, v in r.items() if k != "note"}))
    # rewrite only the problems list, keeping the file's hand layout elsewhere
    head, rest = text.split('"problems": [', 1)
    depth, end = 1, 0
    for end, ch in enumerate(rest):
        depth += ch == "["
        depth -= ch == "]"
        if depth == 0:
            break
    lines = ",\n".join("   " + json.dumps(r, sort_keys=False) for r in kept)
    open(a.shipped, "w").write(head + '"problems": [\n' + lines + "]" + rest[end + 1:])
    json.load(open(a.shipped))  # still valid
    print(f"{len(records)} records shipped ({len(entry['problems'])} before, {len(kept)} now)")


if __name__ == "__main__":
    main()
