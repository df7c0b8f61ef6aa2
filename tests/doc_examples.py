#!/usr/bin/env python3
"""doc_examples - the configuration examples of relayq's documentation, as files

usage: doc_examples.py OUTDIR DOC...

Reads Markdown files (fenced ``` blocks), man pages (.nf/.fi blocks) and
example configuration files, and
writes every example found to OUTDIR:

  NNN.conf   a relayq.conf example: a block whose every line that is not
             blank or a comment is "name = value" or a continuation line.
             The docs write configuration with blanks around "=", and the
             IPC records of doc/internals.md without ("type=deliver"):
             that is how the two are told apart.
  NNN.map    a table example: a block inside the entry (.TP) of a *_maps
             parameter of a man page. Its first line is "# param: NAME".

A file named *.conf.example (the installed example configuration) is one
relayq.conf example as a whole, with its commented settings ("#name =
value") uncommented: that is the file a reader who enables everything gets.

Each file starts with "# source: FILE:LINE" (the block's first line), so a
failing example is found at once. The examples are written as the reader
sees them: roff escapes (\\-, \\e, \\&) are undone; nothing else changes.
"""
import os
import re
import sys

PARAM_LINE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]* = ")
MAPS_HEADING = re.compile(r"^\.B[RI]?\s+([a-z_]+_maps)\b")


def unroff(line):
    """The text a reader sees of one line of a .nf block."""
    return line.replace("\\-", "-").replace("\\e", "\\").replace("\\&", "")


def is_config(lines):
    """Whether a block is a relayq.conf example."""
    seen = False
    for line in lines:
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if line[0] in " \t" and seen:
            continue
        if not PARAM_LINE.match(line):
            return False
        seen = True
    return seen


def markdown_blocks(path):
    """(line number, lines) of each fenced block with no language, or conf."""
    blocks, inside, start, info = [], False, 0, ""
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if line.startswith("```"):
                if inside:
                    if info in ("", "conf", "cfg", "ini"):
                        blocks.append((start, None, body))
                    inside = False
                else:
                    inside, start, info, body = True, number + 1, line[3:].strip(), []
            elif inside:
                body.append(line)
    return blocks


def man_blocks(path):
    """(line number, maps parameter or None, lines) of each .nf/.fi block."""
    blocks, inside, start, heading, after_tp = [], False, 0, None, False
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if inside:
                if line.startswith(".fi"):
                    blocks.append((start, heading, body))
                    inside = False
                elif not line.startswith(".\\\""):
                    body.append(unroff(line))
                continue
            if line.startswith(".nf"):
                inside, start, body = True, number + 1, []
            elif line.startswith(".TP"):
                after_tp = True
                continue
            elif after_tp:
                m = MAPS_HEADING.match(line)
                heading = m.group(1) if m else None
            elif line.startswith(".SH") or line.startswith(".SS"):
                heading = None
            after_tp = False
    return blocks


def example_file_blocks(path):
    """The one block of an example configuration, its settings enabled."""
    body = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("#") and PARAM_LINE.match(line[1:]):
                line = line[1:]
            body.append(line)
    return [(1, None, body)]


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: doc_examples.py OUTDIR DOC...")
    outdir = sys.argv[1]
    count = 0
    for path in sys.argv[2:]:
        name = os.path.basename(path)
        if path.endswith(".md"):
            found = markdown_blocks(path)
        elif path.endswith(".conf.example"):
            found = example_file_blocks(path)
        else:
            found = man_blocks(path)
        for start, maps, body in found:
            if maps is not None:
                suffix, head = "map", "# param: %s\n" % maps
            elif is_config(body):
                suffix, head = "conf", ""
            else:
                continue
            count += 1
            with open(os.path.join(outdir, "%03d.%s" % (count, suffix)), "w") as out:
                out.write(head + "# source: %s:%d\n" % (name, start))
                out.write("\n".join(body) + "\n")
    print(count)


if __name__ == "__main__":
    main()
