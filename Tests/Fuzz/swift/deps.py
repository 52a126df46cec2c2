#!/usr/bin/env python3
"""Reads SwiftPM's build description (.build/debug/description.json) for run.sh.

  deps.py DESCRIPTION objects TARGET... [--exclude T...]
      the prebuilt object files of TARGETs' dependency closures (TARGETs themselves excluded unless
      listed with a leading '+'), one per line
  deps.py DESCRIPTION ccflags TARGET...
      the -Xcc flags (C module maps, include paths) SwiftPM compiles TARGETs with, one per line
"""
import glob, json, os, sys

def main():
    description, mode, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    with open(description) as f:
        d = json.load(f)
    build = os.path.dirname(os.path.abspath(description))
    deps = d["targetDependencyMap"]
    if mode == "objects":
        exclude = set()
        if "--exclude" in args:
            i = args.index("--exclude")
            args, exclude = args[:i], set(args[i + 1:])
        names = []
        for target in args:
            own = target.startswith("+")
            target = target.lstrip("+")
            if target not in deps:
                sys.exit(f"deps.py: no target {target} in {description}")
            for name in ([target] if own else []) + deps[target]:
                if name not in names and name not in exclude:
                    names.append(name)
        for name in names:
            directory = os.path.join(build, name + ".build")
            objects = sorted(o for o in glob.glob(os.path.join(directory, "**", "*.o"), recursive=True)
                             if not o.endswith(".swiftmodule.o"))
            if not objects and not os.path.isdir(directory):
                sys.exit(f"deps.py: {directory} is missing: run `swift build --build-tests` first")
            print("\n".join(objects))
    elif mode == "ccflags":
        flags = []
        for target in args:
            command = d["swiftCommands"].get(f"C.{target}-x86_64-unknown-linux-gnu-debug.module")
            if command is None:
                command = next((c for k, c in d["swiftCommands"].items()
                                if k.startswith(f"C.{target}-") and k.endswith("-debug.module")), None)
            if command is None:
                sys.exit(f"deps.py: no compile command for {target} in {description}")
            argv = command["otherArguments"] if "otherArguments" in command else command.get("args", [])
            i = 0
            while i < len(argv):
                if argv[i] == "-Xcc" and i + 1 < len(argv):
                    flag = argv[i + 1]
                    if flag.startswith("-fmodule-map-file=") or flag in ("-I", "-isystem") or \
                            (flag.startswith("-I") and len(flag) > 2) or \
                            (i >= 2 and argv[i - 2] == "-Xcc" and argv[i - 1] in ("-I", "-isystem")):
                        flags += ["-Xcc", flag]
                    i += 2
                else:
                    i += 1
        # Drop duplicates of whole pairs while keeping "-Xcc -I -Xcc DIR" together.
        seen, out, j = set(), [], 0
        while j < len(flags):
            if flags[j + 1] in ("-I", "-isystem"):
                item = tuple(flags[j:j + 4]); j += 4
            else:
                item = tuple(flags[j:j + 2]); j += 2
            if item not in seen:
                seen.add(item); out += list(item)
        print("\n".join(out))
    else:
        sys.exit(f"deps.py: unknown mode {mode}")

main()
