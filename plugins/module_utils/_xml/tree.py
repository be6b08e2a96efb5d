# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""lxml helpers shared by the libvirt object models.

Safe parsing (no entities, no network: an XML document can come from an
operator's template or from a guest-influenced source), a canonical form for
comparing two documents, and a readable diff of two canonical forms.
"""

from __future__ import annotations

import copy

try:
    from lxml import etree
    HAS_LXML = True
except ImportError:  # reported by the modules through missing_required_lib
    etree = None
    HAS_LXML = False


class XMLError(ValueError):
    """A document that is not well-formed or not the expected kind."""


def _parser():
    return etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True,
                           remove_pis=True, huge_tree=False)


def parse(text, root_tag=None):
    """Parse ``text`` into an element; raise XMLError with lxml's reason."""
    if isinstance(text, str):
        text = text.encode('utf-8')
    try:
        root = etree.fromstring(text, _parser())
    except etree.XMLSyntaxError as exc:
        raise XMLError('not well-formed XML: %s' % exc)
    if root_tag is not None and root.tag != root_tag:
        raise XMLError('the root element is <%s>, expected <%s>' % (root.tag, root_tag))
    return root


def to_string(element):
    """Serialise ``element`` indented, two spaces per level, as libvirt does."""
    element = copy.deepcopy(element)
    strip_blank_text(element)
    etree.indent(element, space='  ')
    return etree.tostring(element, encoding='unicode') + '\n'


def strip_blank_text(element):
    """Drop whitespace-only text and tails (indentation), in place."""
    for node in element.iter():
        if node.text is not None and not node.text.strip():
            node.text = None
        if node.tail is not None and not node.tail.strip():
            node.tail = None
    return element


def sort_children(element):
    """Order the children of every element by tag, in place.

    The sort is stable: siblings with the same tag (a list of hosts or
    devices) keep their order, which is meaningful; only the order of
    different elements, which libvirt does not care about, is normalised.
    """
    for node in element.iter():
        children = [child for child in node if isinstance(child.tag, str)]
        if len(children) > 1:
            children.sort(key=lambda child: child.tag)
            for child in children:
                node.append(child)
    return element


def remove(element, path):
    """Remove every node matching the relative XPath ``path``."""
    for node in element.xpath(path):
        node.getparent().remove(node)


def drop_empty(element):
    """Remove elements that carry nothing: no attributes, no text, no children."""
    changed = True
    while changed:
        changed = False
        for node in list(element.iter()):
            if node is element or not isinstance(node.tag, str):
                continue
            if not node.attrib and not (node.text or '').strip() and len(node) == 0:
                node.getparent().remove(node)
                changed = True
    return element


def child_text(element, path):
    """Stripped text of the first node at ``path``, or None."""
    node = element.find(path)
    if node is None or node.text is None:
        return None
    return node.text.strip()


def set_child_text(parent, tag, text):
    """Append <tag>text</tag> to ``parent`` when text is not None."""
    if text is None:
        return None
    node = etree.SubElement(parent, tag)
    node.text = str(text)
    return node


def unified_diff(before, after, before_name='before', after_name='after'):
    """A unified diff of two serialised documents, '' when they are equal."""
    import difflib  # only on drift: a no-op run should not pay for importing it

    lines = difflib.unified_diff(before.splitlines(True), after.splitlines(True),
                                 fromfile=before_name, tofile=after_name)
    return ''.join(lines)
