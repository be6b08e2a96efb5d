# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One base for libvirt XML objects: lossless parse <-> format, a canonical form, a readable diff.

In the style of virtinst's ``xmlbuilder.py``: an object *is* its element and
its fields are properties that read and write that element in place, so
parsing then formatting keeps every element and attribute, also those no
property names (a newer libvirt's, or a pool type's own). Nova's
``nova/virt/libvirt/config.py`` gives the ``parse_dom``/``format_dom`` names.

Built on the standard library's ElementTree, not lxml: a pool task loads this
on every run, and lxml costs several times more to import (bench/pool_noop).
Parsing is hardened as defusedxml does it: a document that declares entities
is refused, nothing is fetched.
"""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from xml.parsers import expat
from typing import Any, Callable, Iterable, List, Optional, Type, TypeVar

Element = ET.Element
SubElement = ET.SubElement

T = TypeVar('T', bound='XMLObject')


class XMLError(ValueError):
    """A document that is not well-formed or not the expected kind."""


def _refuse_entities(*_args: Any) -> None:
    raise XMLError('the document declares entities; libvirt documents have none')


def _clark(name: str) -> str:
    """expat's 'uri}local' (namespace_separator '}') as ElementTree's '{uri}local'."""
    return '{' + name if '}' in name else name


def parse(text: Any, root_tag: Optional[str] = None) -> ET.Element:
    """Parse ``text`` into an element; raise XMLError with the parser's reason.

    Driven on expat directly because ElementTree's own parser gives no way to
    refuse entity declarations; expat never fetches anything by itself.
    """
    if isinstance(text, str):
        text = text.encode('utf-8')
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate(None, '}')
    parser.buffer_text = True
    parser.StartElementHandler = lambda tag, attrs: builder.start(
        _clark(tag), dict((_clark(key), value) for key, value in attrs.items()))
    parser.EndElementHandler = lambda tag: builder.end(_clark(tag))
    parser.CharacterDataHandler = builder.data
    parser.EntityDeclHandler = parser.UnparsedEntityDeclHandler = _refuse_entities
    try:
        parser.Parse(text, True)
        root = builder.close()
    except expat.ExpatError as exc:
        raise XMLError('not well-formed XML: %s' % exc)
    if root_tag is not None and root.tag != root_tag:
        raise XMLError('the root element is <%s>, expected <%s>' % (root.tag, root_tag))
    return root


def strip_blank_text(element: ET.Element) -> ET.Element:
    """Drop whitespace-only text and tails (indentation), in place."""
    for node in element.iter():
        if node.text is not None and not node.text.strip():
            node.text = None
        if node.tail is not None and not node.tail.strip():
            node.tail = None
    return element


def to_string(element: ET.Element) -> str:
    """Serialise ``element`` indented, two spaces per level, as libvirt does."""
    element = strip_blank_text(copy.deepcopy(element))
    ET.indent(element, space='  ')
    # ElementTree closes an empty element with ' />'; libvirt and lxml write '/>'. Attribute values and
    # text never hold a bare '>' (it is escaped), so this only touches empty-element ends.
    return ET.tostring(element, encoding='unicode').replace(' />', '/>') + '\n'


def child_text(element: Optional[ET.Element], path: str) -> Optional[str]:
    """Stripped text of the first node at ``path``, or None."""
    node = element.find(path) if element is not None else None
    if node is None or node.text is None:
        return None
    return node.text.strip()


def unified_diff(before: str, after: str, before_name: str = 'before', after_name: str = 'after') -> str:
    """A unified diff of two serialised documents, '' when they are equal."""
    import difflib  # only on drift: a no-op run should not pay for importing it

    lines = difflib.unified_diff(before.splitlines(True), after.splitlines(True),
                                 fromfile=before_name, tofile=after_name)
    return ''.join(lines)


def canonicalize(element: ET.Element) -> ET.Element:
    """In place: no indentation, attributes by name, children by tag (stably), no empty elements.

    Sorting is stable, so siblings with one tag (hosts, devices) keep their
    order, which means something; the order of different elements and of
    attributes does not, to libvirt.
    """
    strip_blank_text(element)
    _drop_empty(element)
    for node in element.iter():
        if len(node.attrib) > 1:
            ordered = sorted(node.attrib.items())
            node.attrib.clear()
            node.attrib.update(ordered)
        children = list(node)
        if len(children) > 1:
            children.sort(key=lambda child: child.tag)
            node[:] = children
    return element


def _drop_empty(element: ET.Element) -> None:
    for child in list(element):
        _drop_empty(child)
        if not child.attrib and not (child.text or '').strip() and len(child) == 0:
            element.remove(child)


# -- properties -----------------------------------------------------------------------------------

def _split(path: str):
    """'a/b/@c' -> (['a', 'b'], 'c'); 'a/b' -> (['a', 'b'], None); '@c' -> ([], 'c')."""
    steps = [step for step in path.split('/') if step]
    attribute = steps.pop()[1:] if steps and steps[-1].startswith('@') else None
    return steps, attribute


class XMLProperty:
    """A text or attribute value at a path below the object's element.

    ``path`` is 'tag/tag' (the text of that element) or 'tag/@attribute' or
    '@attribute'. Reading a missing node gives None; writing creates the
    elements on the way (in the object's ``CHILD_ORDER``); writing None
    removes the node, and elements it leaves empty. Values are exact (not
    stripped): what is read is what libvirt would read.
    """

    def __init__(self, path: str, parse: Callable[[str], Any] = str, format: Callable[[Any], str] = str) -> None:
        self.steps, self.attribute = _split(path)
        self.parse = parse
        self.format = format

    def __get__(self, obj: Optional['XMLObject'], owner: Any = None) -> Any:
        if obj is None:
            return self
        node = obj.find_path(self.steps)
        if node is None:
            return None
        value = node.get(self.attribute) if self.attribute else node.text
        return self.parse(value) if value is not None else None

    def __set__(self, obj: 'XMLObject', value: Any) -> None:
        if value is None:
            node = obj.find_path(self.steps)
            if node is not None:
                if self.attribute:
                    node.attrib.pop(self.attribute, None)
                else:
                    node.text = None
                obj.prune(self.steps)
            return
        node = obj.make_path(self.steps)
        if self.attribute:
            node.set(self.attribute, self.format(value))
        else:
            node.text = self.format(value)


class XMLChildList:
    """Every child object at ``tag`` (in document order), replaced as a whole on assignment."""

    def __init__(self, cls: Type['XMLObject'], tag: Optional[str] = None) -> None:
        self.cls = cls
        self.steps = (tag or cls.ROOT_TAG).split('/')

    def __get__(self, obj: Optional['XMLObject'], owner: Any = None) -> Any:
        if obj is None:
            return self
        parent = obj.find_path(self.steps[:-1])
        if parent is None:
            return []
        return [self.cls(node=node) for node in parent.findall(self.steps[-1])]

    def __set__(self, obj: 'XMLObject', values: Iterable['XMLObject']) -> None:
        values = list(values or [])
        parent = obj.make_path(self.steps[:-1]) if values else obj.find_path(self.steps[:-1])
        if parent is None:
            return
        for old in parent.findall(self.steps[-1]):
            parent.remove(old)
        for value in values:
            obj.insert_child(parent, copy.deepcopy(value.node))
        if not values:
            obj.prune(self.steps[:-1])


class XMLChild(XMLChildList):
    """One child object (an XMLObject subclass) at ``tag``; None when absent."""

    def __get__(self, obj: Optional['XMLObject'], owner: Any = None) -> Any:
        if obj is None:
            return self
        children = super().__get__(obj, owner)
        return children[0] if children else None

    def __set__(self, obj: 'XMLObject', value: Optional['XMLObject']) -> None:
        super().__set__(obj, [value] if value is not None else [])


class XMLObject:
    """A libvirt XML object backed by its element, which it keeps whole.

    Subclasses name ``ROOT_TAG``, declare fields with XMLProperty, XMLChild
    and XMLChildList, and may list ``CHILD_ORDER``: the order libvirt writes
    child elements in, used when a property creates one. ``canonical_rules``
    adapts the canonical form to what libvirt fills in or rewrites.
    """

    ROOT_TAG = ''
    CHILD_ORDER: tuple = ()

    def __init__(self, node: Optional[ET.Element] = None) -> None:
        self.node = node if node is not None else ET.Element(self.ROOT_TAG)

    # -- parse and format -------------------------------------------------------------------------

    @classmethod
    def parse_dom(cls: Type[T], node: ET.Element) -> T:
        """An object over a copy of ``node``: later edits never reach the caller's tree."""
        return cls(node=copy.deepcopy(node))

    @classmethod
    def from_xml(cls: Type[T], text: Any) -> T:
        return cls(node=parse(text, cls.ROOT_TAG))

    def format_dom(self) -> ET.Element:
        return copy.deepcopy(self.node)

    def to_xml(self) -> str:
        return to_string(self.node)

    def copy(self: T) -> T:
        return type(self)(node=copy.deepcopy(self.node))

    # -- canonical form and diff --------------------------------------------------------------------

    def canonical_rules(self, root: ET.Element) -> None:
        """Subclasses: drop or normalise, in place, what libvirt fills in or rewrites."""

    def canonical(self) -> ET.Element:
        root = strip_blank_text(copy.deepcopy(self.node))
        self.canonical_rules(root)
        return canonicalize(root)

    def canonical_string(self) -> str:
        return to_string(self.canonical())

    def same_as(self, other: 'XMLObject') -> bool:
        return self.canonical_string() == other.canonical_string()

    def diff(self, other: 'XMLObject', before_name: str = 'before', after_name: str = 'after') -> str:
        """A unified diff of the canonical forms (self before, ``other`` after); '' when equal."""
        return unified_diff(self.canonical_string(), other.canonical_string(), before_name, after_name)

    # -- element helpers for the properties ---------------------------------------------------------

    def find_path(self, steps: List[str]) -> Optional[ET.Element]:
        node = self.node
        for step in steps:
            node = node.find(step)
            if node is None:
                return None
        return node

    def make_path(self, steps: List[str]) -> ET.Element:
        node = self.node
        for step in steps:
            child = node.find(step)
            if child is None:
                child = self.insert_child(node, ET.Element(step))
            node = child
        return node

    def insert_child(self, parent: ET.Element, child: ET.Element) -> ET.Element:
        """Put ``child`` where libvirt writes it: before the first sibling CHILD_ORDER lists later."""
        order = self.CHILD_ORDER if parent is self.node else ()
        if child.tag in order:
            rank = order.index(child.tag)
            for index, sibling in enumerate(parent):
                if sibling.tag in order and order.index(sibling.tag) > rank:
                    parent.insert(index, child)
                    return child
        parent.append(child)
        return child

    def prune(self, steps: List[str]) -> None:
        """Remove the elements along ``steps`` that carry nothing any more, deepest first."""
        for depth in range(len(steps), 0, -1):
            parent, node = self.find_path(steps[:depth - 1]), self.find_path(steps[:depth])
            if node is None or parent is None:
                continue
            if node.attrib or (node.text or '').strip() or len(node):
                return
            parent.remove(node)
