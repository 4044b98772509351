"""The `vidattn` console script of the wheel: runs the command-line tool it carries
(vidattn/bin/vidattn, built with the Swift runtime linked in), with the bundled libraries on
its loader path; from a source checkout, the repository's build."""
import os
import sys
from pathlib import Path


def main():
    here = Path(__file__).resolve().parent
    for exe in (here / "bin" / "vidattn", here.parent.parent.parent / ".build" / "release" / "vidattn-cli"):
        if exe.is_file():
            env = dict(os.environ)
            env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(here), env.get("LD_LIBRARY_PATH")]))
            os.execve(str(exe), [str(exe)] + sys.argv[1:], env)
    sys.exit("vidattn: error: the command-line tool is not in this installation (build it with `make`)")


if __name__ == "__main__":
    main()
