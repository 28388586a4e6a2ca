#!/usr/bin/env python3
"""Moves each catalogue key to the crate whose code names it (run from the repository's root).

rust-i18n's t! reads the catalogue of the crate it is written in, and the binary's catalogue
(locales/) is laid over the engine's (crates/tcp-lab-core/locales/). So a key the engine's code
names must be in the engine's catalogue; a key only the front ends name belongs in locales/.
After merging a branch that added keys on the old layout (all in locales/en.yml and ko.yml),
resolve a conflict in locales/*.yml by keeping both sides' lines:
    for F in locales/en.yml locales/ko.yml; do for n in 1 2 3; do git show :$n:$F > /tmp/s$n; done
      git merge-file -p --union /tmp/s2 /tmp/s1 /tmp/s3 > $F; done
then run this (a key then in both catalogues keeps locales/'s text), then
`cargo test -p tcp-lab-core --lib i18n` and `cargo test -p tcp-lab --lib catalogue`: the tests
name any key still out of place (keys built at run time, like action.*, stay where they are).
Needs PyYAML. Lines, comments and order are kept; a moved key goes to the end of its section.
"""
import re, sys, glob, os
import yaml

CORE, BIN = 'crates/tcp-lab-core', '.'
KEYLINE = re.compile(r'^( *)"?([A-Za-z_0-9]+)"?:(.*)$')
LITERAL = re.compile(r'"([a-z_0-9]+(?:\.[a-z_0-9]+)+)"')


def named_in(src_dir):
    """The key-shaped string literals of the code under src_dir."""
    out = set()
    for p in glob.glob(f'{src_dir}/**/*.rs', recursive=True):
        out.update(LITERAL.findall(open(p, encoding='utf-8').read()))
    return out


def entries(lines):
    """(path, start, end) of each leaf, its comment lines included; parents' paths too."""
    out, stack, pending = [], [], None
    for i, ln in enumerate(lines):
        m = KEYLINE.match(ln)
        if not m:
            if ln.lstrip().startswith('#') and pending is None:
                pending = i
            elif not ln.strip():
                pending = None
            continue
        ind, name, rest = len(m.group(1)), m.group(2), m.group(3).strip()
        while stack and stack[-1][0] >= ind:
            stack.pop()
        path = '.'.join([s[1] for s in stack] + [name])
        start = pending if pending is not None else i
        pending = None
        if rest == '' or rest.startswith('#'):
            stack.append((ind, name))
            out.append((path, i, i + 1, 'parent'))
        else:
            out.append((path, start, i + 1, 'leaf'))
    return out


def move(src, dst, want):
    """Moves the leaves of file src that want() picks into file dst (None: drops them)."""
    lines = open(src, encoding='utf-8').read().splitlines(keepends=True)
    picked = [e for e in entries(lines) if e[3] == 'leaf' and not e[0].startswith('_') and want(e[0])]
    if not picked:
        return []
    taken = set()
    for _, a, b, _ in picked:
        taken.update(range(a, b))
    kept = [ln for i, ln in enumerate(lines) if i not in taken]
    # Parents left with no leaf go too.
    while True:
        es = entries(kept)
        empty = [e for e in es if e[3] == 'parent' and not any(
            f[0].startswith(e[0] + '.') for f in es if f[3] == 'leaf')]
        if not empty:
            break
        drop = {empty[0][1]}
        kept = [ln for i, ln in enumerate(kept) if i not in drop]
    if dst is None:
        out = None
    elif os.path.exists(dst):
        out = open(dst, encoding='utf-8').read().splitlines(keepends=True)
    else:
        head = [ln for ln in lines if ln.startswith('#') or ln.startswith('_version')]
        out = head[:next((i for i, l in enumerate(head) if l.startswith('_version')), len(head)) + 1]
    for path, a, b, _ in picked if out is not None else []:
        block = lines[a:b]
        parts = path.split('.')
        es = entries(out)
        # The deepest section dst already has, then the ones it lacks.
        depth = 0
        for d in range(len(parts) - 1, 0, -1):
            if any(e[0] == '.'.join(parts[:d]) and e[3] == 'parent' for e in es):
                depth = d
                break
        if depth:
            prefix = '.'.join(parts[:depth]) + '.'
            at = max(e[2] for e in es if e[0].startswith(prefix) or e[0] == prefix[:-1])
        else:
            at = len(out)
            if out and out[-1].strip():
                out.insert(at, '\n')
                at += 1
        new = ['  ' * d + parts[d] + ':\n' for d in range(depth, len(parts) - 1)]
        out[at:at] = new + block
    if out is not None:
        open(dst, 'w', encoding='utf-8').write(''.join(out))
    if any(e[3] == 'leaf' and not e[0].startswith('_') for e in entries(kept)):
        open(src, 'w', encoding='utf-8').write(''.join(kept))
    else:
        os.remove(src)
    return [p for p, *_ in picked]


def flat(p):
    def go(d, pre=''):
        for k, v in (d or {}).items():
            if isinstance(v, dict):
                yield from go(v, f'{pre}{k}.')
            else:
                yield f'{pre}{k}', v
    return dict(go(yaml.safe_load(open(p, encoding='utf-8'))))


def main():
    core_named, bin_named = named_in(f'{CORE}/src'), named_in(f'{BIN}/src')
    # A key in both (a merge that took a branch's whole locales/ file): locales/'s text wins.
    before = {}
    for d in (BIN, CORE):
        for p in glob.glob(f'{d}/locales/*.yml'):
            for k, v in flat(p).items():
                before.setdefault((os.path.basename(p), k), v)
    moved = 0
    for name in sorted({os.path.basename(p) for d in (CORE, BIN) for p in glob.glob(f'{d}/locales/*.yml')}):
        if name.startswith('cli.'):
            continue
        b, c = f'{BIN}/locales/{name}', f'{CORE}/locales/{name}'
        if os.path.exists(b) and os.path.exists(c):
            twice = (set(flat(b)) & set(flat(c))) - {'_version'}
            # The engine's: its line takes locales/'s text, in place; then locales/ drops it.
            bl = open(b, encoding='utf-8').read().splitlines(keepends=True)
            cl = open(c, encoding='utf-8').read().splitlines(keepends=True)
            text = {e[0]: bl[e[2] - 1] for e in entries(bl) if e[3] == 'leaf'}
            for e in entries(cl):
                if e[3] == 'leaf' and e[0] in twice and e[0] in core_named:
                    cl[e[2] - 1] = text[e[0]]
            open(c, 'w', encoding='utf-8').write(''.join(cl))
            move(b, None, lambda k: k in twice and k in core_named)
            move(c, None, lambda k: k in twice and k not in core_named)
        if os.path.exists(b):
            for k in move(b, c, lambda k: k in core_named):
                print(f'{name}: {k} → {CORE}/locales'); moved += 1
        if os.path.exists(c):
            for k in move(c, b, lambda k: k not in core_named and k in bin_named):
                print(f'{name}: {k} → locales'); moved += 1
    after = {}
    for d in (CORE, BIN):
        for p in glob.glob(f'{d}/locales/*.yml'):
            for k, v in flat(p).items():
                assert (os.path.basename(p), k) not in after or k.startswith('_'), (p, k)
                after[(os.path.basename(p), k)] = v
    assert after == before, set(after.items()) ^ set(before.items())
    print(f'{moved} keys moved')


if __name__ == '__main__':
    sys.exit(main())
