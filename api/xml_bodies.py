"""XML request and response bodies, for the CRM BatchTask API's application/xml and text/xml.

Parsing goes through defusedxml (no DTD, no entity expansion, no external
resource) and is bounded: bytes, element depth and element count are checked as
the parser reads, before any tree is walked. An element's text is a string; an
element with children is an object; a ``List`` element (``Items``) is a list of
its children; ``xsi:nil="true"`` is null.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from typing import Any
from xml.etree.ElementTree import Element, SubElement, tostring

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, iterparse

from batchq.errors import InvalidRequest

MAX_XML_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 16
MAX_ELEMENTS = 100_000
XSI = "http://www.w3.org/2001/XMLSchema-instance"
NIL = f"{{{XSI}}}nil"
#: A key that is no XML name (``"a b"``, ``"1st"``) is written ``<Entry Key="a b">``.
ENTRY, KEY = "Entry", "Key"
_XML_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9._-]*\Z")
#: Characters XML 1.0 cannot hold: written as U+FFFD.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def parse_xml(data: bytes, root: str, lists: Iterable[str] = ()) -> dict[str, Any]:
    """The object of an XML document whose root element is ``root``; ``InvalidRequest`` else."""
    if len(data) > MAX_XML_BYTES:
        raise InvalidRequest(f"The XML body is larger than {MAX_XML_BYTES} bytes")
    element = _bounded_tree(data)
    if _local(element.tag) != root:
        raise InvalidRequest(f"The XML body's root element must be <{root}>, not "
                             f"<{_local(element.tag)}>")
    value = _value(element, frozenset(lists))
    return value if isinstance(value, dict) else {}


def _bounded_tree(data: bytes) -> Element:
    depth = elements = 0
    root: Element | None = None
    try:
        for event, element in iterparse(io.BytesIO(data), events=("start", "end"),
                                        forbid_dtd=True):
            if event == "end":
                depth -= 1
                continue
            depth, elements = depth + 1, elements + 1
            root = element if root is None else root
            if depth > MAX_DEPTH or elements > MAX_ELEMENTS:
                raise InvalidRequest(f"The XML body nests deeper than {MAX_DEPTH} elements or "
                                     f"holds more than {MAX_ELEMENTS}")
    except (ParseError, DefusedXmlException, UnicodeError, ValueError) as exc:
        raise InvalidRequest(f"The XML body cannot be read: {exc}") from None
    if root is None:
        raise InvalidRequest("The XML body is empty")
    return root


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _value(element: Element, lists: frozenset[str]) -> Any:
    if element.get(NIL) == "true":
        return None
    children = list(element)
    if _local(element.tag) in lists:
        return [_value(child, lists) for child in children]
    if not children:
        return element.text or ""
    return {_key(child): _value(child, lists) for child in children}


def _key(element: Element) -> str:
    if _local(element.tag) == ENTRY and element.get(KEY) is not None:
        return str(element.get(KEY))
    return _local(element.tag)


def to_xml(root: str, value: Any) -> bytes:
    """``value`` as an XML document with root element ``root``: an object's keys become
    elements, a list's entries ``<Item>`` elements, null ``xsi:nil="true"``."""
    element = Element(root)
    _fill(element, value)
    return b'<?xml version="1.0" encoding="utf-8"?>' + tostring(element, encoding="utf-8",
                                                                 xml_declaration=False)


def _fill(element: Element, value: Any) -> None:
    if value is None:
        element.set("xmlns:xsi", XSI)
        element.set("xsi:nil", "true")
    elif isinstance(value, dict):
        for name, inner in value.items():
            _fill(_child(element, str(name)), inner)
    elif isinstance(value, list):
        for inner in value:
            _fill(SubElement(element, "Item"), inner)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    else:
        element.text = _NOT_XML.sub("\ufffd", str(value))


def _child(parent: Element, name: str) -> Element:
    if _XML_NAME.match(name) and not name.lower().startswith("xml") and name != ENTRY:
        return SubElement(parent, name)
    return SubElement(parent, ENTRY, {KEY: _NOT_XML.sub("\ufffd", name)})
