"""Pages read as HTML, not as strings: a small tree from the standard library's parser.

Tests ask what a user would see (the text beside a field, whether a form is
there, the value a copy button copies) rather than grepping markup.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser

__all__ = ["Node", "form_fields", "parse"]

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
         "track", "wbr"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The text inside, whitespace collapsed, as a reader sees it."""
        parts: list[str] = []
        for child in self.children:
            parts.append(child if isinstance(child, str) else f" {child.text} ")
        return " ".join("".join(parts).split())

    def walk(self) -> Iterator[Node]:
        for child in self.children:
            if isinstance(child, Node):
                yield child
                yield from child.walk()

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Node]:
        """Elements with this tag and these attributes; `cls` matches one class name."""
        wanted = {key.rstrip("_"): value for key, value in attrs.items()}
        cls = wanted.pop("cls", None)
        return [
            node for node in self.walk()
            if (tag is None or node.tag == tag)
            and all(node.attrs.get(key.replace("_", "-")) == value for key, value in wanted.items())
            and (cls is None or cls in node.attrs.get("class", "").split())
        ]

    def find(self, tag: str | None = None, **attrs: str) -> Node | None:
        found = self.find_all(tag, **attrs)
        return found[0] if found else None

    def one(self, tag: str | None = None, **attrs: str) -> Node:
        found = self.find_all(tag, **attrs)
        assert len(found) == 1, f"expected one <{tag} {attrs}>, found {len(found)}"
        return found[0]


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {key: value or "" for key, value in attrs})
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self.stack) - 1, 0, -1):
            if self.stack[index].tag == tag:
                del self.stack[index:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(html: str) -> Node:
    builder = _Builder()
    builder.feed(html)
    builder.close()
    return builder.root


def form_fields(form: Node) -> dict[str, list[str]]:
    """What a browser submits for this form as it stands: hidden and text inputs, checked
    boxes, textareas, and each select's chosen option."""
    fields: dict[str, list[str]] = {}
    for node in form.walk():
        name = node.attrs.get("name")
        if not name:
            continue
        if node.tag == "input":
            if node.attrs.get("type") in ("checkbox", "radio") and "checked" not in node.attrs:
                continue
            value = node.attrs.get("value", "")
        elif node.tag == "textarea":
            value = "".join(c for c in node.children if isinstance(c, str))
        elif node.tag == "select":
            options = node.find_all("option")
            chosen = [o for o in options if "selected" in o.attrs] or options[:1]
            value = chosen[0].attrs.get("value", chosen[0].text) if chosen else ""
        else:
            continue
        fields.setdefault(name, []).append(value)
    return fields
