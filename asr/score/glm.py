"""Reference and hypothesis text normalisation: NIST GLM rules, STM alternatives, noise and hesitations.

A reference becomes a sequence of slots; a slot is a tuple of alternative word sequences (`()` is
sclite's null branch `@`). An optionally deletable word is kept in parentheses, e.g. `(%hesitation)`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

HESITATION = "%hesitation"

Slot = tuple[tuple[str, ...], ...]


def _plain(word: str) -> Slot:
    return ((word,),)


def _optional(word: str) -> Slot:
    """An optionally deletable word (sclite's `(w)`: deleting it costs 2 and counts as correct)."""
    return ((f"({word})",),)


def is_optional(word: str) -> bool:
    """`(w)`: optionally deletable."""
    return len(word) > 2 and word[0] == "(" and word[-1] == ")"


def bare(word: str) -> str:
    """`(w)` -> `w`; other words unchanged."""
    return word[1:-1] if is_optional(word) else word


def tokenize(text: str) -> list[str]:
    """Split text into tokens, keeping `{`, `/`, `}` as separate tokens."""
    return re.sub(r"([{}/])", r" \1 ", text.lower()).split()


def parse_alternatives(tokens: list[str], i: int, where: str) -> tuple[Slot, int]:
    """Parse `{ a b / c / @ }` starting at tokens[i] == '{'; return the slot and next index."""
    alts: list[tuple[str, ...]] = []
    cur: list[str] = []
    i += 1
    while i < len(tokens) and tokens[i] != "}":
        tok = tokens[i]
        if tok == "/":
            alts.append(tuple(cur))
            cur = []
        elif tok != "@":
            cur.append(tok)
        i += 1
    if i >= len(tokens):
        raise ValueError(f"{where}: unclosed '{{' in alternatives")
    alts.append(tuple(cur))
    return tuple(dict.fromkeys(alts)), i + 1


def is_dropped(word: str) -> bool:
    """Noise/non-lexical tokens scored by nobody: `[noise]`, `<unk>`, `!sil`, empty."""
    return not word or word.startswith("[") or word.startswith("<") or word == "!sil"


@dataclass
class GlmRule:
    """One GLM rule `lhs => rhs / [ left ] __ [ right ]`; rhs as alternative word sequences."""

    lhs: tuple[str, ...]
    rhs: tuple[tuple[str, ...], ...]
    left: tuple[str, ...] = ()
    right: tuple[str, ...] = ()


_CONTEXT_RE = re.compile(r"^(?P<rhs>.*?)\s*/\s*\[(?P<left>[^\]]*)\]\s*__\s*\[(?P<right>[^\]]*)\]\s*$")


def parse_glm(text: str, where: str = "glm") -> list[GlmRule]:
    """Parse a NIST GLM (`* key = 'value'` header lines, `;;` comments, one rule a line).

    Rule: `LHS words => RHS / [ left context ] __ [ right context ]`; the context part may be
    absent; RHS is words and `{ a / b c / @ }` groups (expanded into whole alternatives).
    """
    rules: list[GlmRule] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split(";;", 1)[0].strip()
        if not line or line.startswith("*"):
            continue
        if "=>" not in line:
            raise ValueError(f"{where}:{lineno}: GLM rule without '=>': {raw!r}")
        lhs_text, rest = line.split("=>", 1)
        left = right = ""
        m = _CONTEXT_RE.match(rest.strip())
        if m:
            rest, left, right = m.group("rhs"), m.group("left"), m.group("right")
        lhs = tuple(tokenize(lhs_text))
        if not lhs:
            raise ValueError(f"{where}:{lineno}: GLM rule with an empty left-hand side: {raw!r}")
        tokens = tokenize(rest)
        alts: list[tuple[str, ...]] = [()]
        i = 0
        while i < len(tokens):
            if tokens[i] == "{":
                slot, i = parse_alternatives(tokens, i, f"{where}:{lineno}")
                alts = [a + b for a in alts for b in slot]
            elif tokens[i] in ("/", "}"):
                raise ValueError(f"{where}:{lineno}: stray '{tokens[i]}' in GLM rule: {raw!r}")
            else:
                if tokens[i] != "@":
                    alts = [a + (tokens[i],) for a in alts]
                i += 1
        rules.append(GlmRule(lhs, tuple(dict.fromkeys(alts)), tuple(tokenize(left)), tuple(tokenize(right))))
    return rules


def read_glm(path: str | Path) -> list[GlmRule]:
    """Read and parse a GLM file (latin-1 safe)."""
    return parse_glm(Path(path).read_text(encoding="utf-8", errors="replace"), str(path))


def _rule_at(rules_by_first: dict[str, list[GlmRule]], words: list[str], i: int) -> GlmRule | None:
    for rule in rules_by_first.get(words[i], ()):
        n = len(rule.lhs)
        if tuple(words[i : i + n]) != rule.lhs:
            continue
        if rule.left and tuple(words[max(0, i - len(rule.left)) : i]) != rule.left:
            continue
        if rule.right and tuple(words[i + n : i + n + len(rule.right)]) != rule.right:
            continue
        return rule
    return None


def _index_rules(rules: list[GlmRule]) -> dict[str, list[GlmRule]]:
    by_first: dict[str, list[GlmRule]] = {}
    for rule in sorted(rules, key=lambda r: -len(r.lhs)):  # longest match first
        by_first.setdefault(rule.lhs[0], []).append(rule)
    return by_first


def split_hyphens(word: str) -> list[str]:
    """`uh-huh` -> `uh huh`, `(uh-huh)` -> `(uh) (huh)` (hubscr's Hub5 filter, csrfilt -s); fragments
    `th-`, `-ing`, `(wo-)` stay whole."""
    w = bare(word)
    if "-" not in w.strip("-") or w.startswith("-") or w.endswith("-"):
        return [word]
    parts = [p for p in w.split("-") if p]
    return [f"({p})" for p in parts] if is_optional(word) else parts


def _split_slots(slots: list[Slot]) -> list[Slot]:
    out: list[Slot] = []
    for slot in slots:
        if len(slot) == 1:
            out.extend(((w,),) for word in slot[0] for w in split_hyphens(word))
        else:
            out.append(tuple(tuple(w for word in alt for w in split_hyphens(word)) for alt in slot))
    return out


def parse_reference(text: str, rules: list[GlmRule] | None = None, where: str = "ref") -> list[Slot]:
    """Reference text -> slots: GLM applied, noise dropped, `(w)` and `%hesitation` optional; with a
    GLM (Hub5 scoring) hyphenated words are split as hubscr does."""
    if rules is not None:
        return _split_slots(_parse_reference(text, rules, where))
    return _parse_reference(text, rules, where)


def _parse_reference(text: str, rules: list[GlmRule] | None, where: str) -> list[Slot]:
    by_first = _index_rules(rules or [])
    tokens = tokenize(text)
    # First pass: words (with an `optional` flag) and explicit alternative groups.
    items: list[tuple[str, object]] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "{":
            slot, i = parse_alternatives(tokens, i, where)
            items.append(("alt", slot))
            continue
        if tok in ("/", "}"):
            raise ValueError(f"{where}: stray '{tok}' in reference {text!r}")
        optional = tok.startswith("(") and tok.endswith(")") and len(tok) > 2
        word = tok[1:-1] if optional else tok
        items.append(("opt" if optional else "word", word))
        i += 1
    slots: list[Slot] = []
    j = 0
    while j < len(items):
        kind, val = items[j]
        if kind == "alt":
            slots.append(val)  # type: ignore[arg-type]
            j += 1
            continue
        # Try a GLM rule on the run of plain words starting here.
        run = []
        k = j
        while k < len(items) and items[k][0] == "word":
            run.append(items[k][1])
            k += 1
        rule = _rule_at(by_first, run, 0) if run else None
        if rule is not None:
            alts = tuple(tuple(w for w in a if not is_dropped(w)) for a in rule.rhs)
            if len(alts) == 1:
                slots.extend(_optional(w) if w == HESITATION else _plain(w) for w in alts[0])
            else:
                slots.append(alts)
            j += len(rule.lhs)
            continue
        word = str(val)
        if kind == "opt":
            mapped = _rule_at(by_first, [word], 0)
            for w in mapped.rhs[0] if mapped is not None else (word,):
                if not is_dropped(w):
                    slots.append(_optional(w))
        elif not is_dropped(word):
            slots.append(_optional(word) if word == HESITATION else _plain(word))
        j += 1
    return slots


def normalize_hypothesis(words: list[str], rules: list[GlmRule] | None = None) -> list[str]:
    """Hypothesis words -> scored words: single-output GLM rules applied, noise and hesitations dropped
    (as Kaldi's Hub5 scoring removes them from the CTM); with a GLM hyphenated words are split."""
    by_first = _index_rules([r for r in (rules or []) if len(r.rhs) == 1])
    words = [w.lower() for w in words]
    out: list[str] = []
    i = 0
    while i < len(words):
        rule = _rule_at(by_first, words, i)
        if rule is not None:
            out.extend(rule.rhs[0])
            i += len(rule.lhs)
        else:
            out.append(words[i])
            i += 1
    if rules is not None:
        out = [p for w in out for p in split_hyphens(w)]
    return [w for w in out if not is_dropped(w) and w != HESITATION]

