#!/usr/bin/env python3
"""Writes a synthetic runbook for the validate+plan benchmark (python3 stdlib only).

The steps form a layered DAG of width 10: layer 0 has `needs: []`; every later step needs two
steps of the layer before it (the one in its own column and the next one). Commands are
templates: every third step reads `params.msg`, every fifth step declares an output, and the
step two layers below such a step (same column, so a sure ancestor) reads that output, which
exercises the reference and ordering checks of `plan`.

Usage: gen_runbook.py STEPS OUT.yaml
"""

import sys

WIDTH = 10


def step_id(n: int) -> str:
    return f"s{n}"


def has_output(n: int) -> bool:
    return n % 5 == 0


def write(steps: int, out) -> None:
    out.write("name: bench-plan\n")
    out.write(f"description: Synthetic layered DAG of {steps} steps for the plan benchmark.\n")
    out.write("params:\n")
    out.write("  msg: { type: string, default: hello }\n")
    out.write("steps:\n")
    for n in range(steps):
        layer, col = divmod(n, WIDTH)
        out.write(f"  - id: {step_id(n)}\n")
        if layer == 0:
            out.write("    needs: []\n")
        else:
            prev = (layer - 1) * WIDTH
            a = prev + col
            b = prev + (col + 1) % WIDTH
            out.write(f"    needs: [{step_id(a)}, {step_id(b)}]\n")
        source = n - 2 * WIDTH
        if layer >= 2 and has_output(source):
            # Two layers up in the same column: an ancestor through the column's chain.
            run = f"echo {{{{ steps.{step_id(source)}.outputs.value }}}} step-{n}"
        elif n % 3 == 0:
            run = f"echo {{{{ params.msg }}}} step-{n}"
        else:
            run = f"echo step-{n}"
        out.write(f'    run: "{run}"\n')
        if has_output(n):
            out.write('    outputs: { value: "{{ result.stdout | trim }}" }\n')


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} STEPS OUT.yaml")
    steps = int(sys.argv[1])
    if steps < 1:
        sys.exit("STEPS must be at least 1")
    with open(sys.argv[2], "w", encoding="utf-8") as out:
        write(steps, out)


if __name__ == "__main__":
    main()
