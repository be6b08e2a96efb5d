# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""lxml helpers for the documents still handled as lxml trees (the domain document).

Safe parsing (no entities, no network: an XML document can come from an
operator's template or from a guest-influenced source) and canonical helpers.
The pool, volume and secret models are built on _xml/base.py (the standard
library's ElementTree); the error class and the diff are that module's.
"""

from __future__ import annotations

import copy
from typing import Any, Optional

# lxml is loaded on first use, not on import: loading it costs several times what the standard library's
# parser does, and only the domain document needs it.


def _lxml():
    try:
        from lxml import etree
    except ImportError:  # reported by the modules through missing_libraries, before anything parses
        return None
    return etree


def __getattr__(name):
    """``tree.etree``: lxml's etree module (None without lxml), imported when first asked for."""
    if name == 'etree':
        return _lxml()
    raise AttributeError(name)


from ansible_collections.storagepools.libvirt.plugins.module_utils._xml import base as xml_base

XMLError = xml_base.XMLError
unified_diff = xml_base.unified_diff
strip_blank_text = xml_base.strip_blank_text
child_text = xml_base.child_text


def _parser():
    return _lxml().XMLParser(resolve_entities=False, no_network=True, remove_comments=True, remove_pis=True,
                             huge_tree=False)


def parse(text: str, root_tag: Optional[str] = None) -> Any:
    """Parse ``text`` into an element; raise XMLError with lxml's reason."""
    if isinstance(text, str):
        text = text.encode('utf-8')
    try:
        root = _lxml().fromstring(text, _parser())
    except _lxml().XMLSyntaxError as exc:
        raise XMLError('not well-formed XML: %s' % exc)
    if root_tag is not None and root.tag != root_tag:
        raise XMLError('the root element is <%s>, expected <%s>' % (root.tag, root_tag))
    return root


def to_string(element: Any) -> str:
    """Serialise ``element`` indented, two spaces per level, as libvirt does."""
    element = copy.deepcopy(element)
    strip_blank_text(element)
    _lxml().indent(element, space='  ')
    return _lxml().tostring(element, encoding='unicode') + '\n'


def sort_children(element: Any) -> Any:
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


def remove(element: Any, path: str) -> None:
    """Remove every node matching the relative XPath ``path``."""
    for node in element.xpath(path):
        node.getparent().remove(node)


def drop_empty(element: Any) -> Any:
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


def set_child_text(parent: Any, tag: str, text: Optional[str]) -> Any:
    """Append <tag>text</tag> to ``parent`` when text is not None."""
    if text is None:
        return None
    node = _lxml().SubElement(parent, tag)
    node.text = str(text)
    return node
