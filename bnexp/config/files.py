"""Config and sweep files as YAML 1.2, read within limits and written back exactly.

PyYAML follows YAML 1.1, which reads `1e-3` as a string; the loader here reads it as 1.2
does. A hostile file (too large, not text, an alias bomb, a key given twice) is refused
with one line naming it before its values are built.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from bnexp.config.schema import Config
from bnexp.errors import ConfigError

MAX_YAML_BYTES = 1 << 20  # a config or sweep file; bnexp's own are a few kB
# YAML nodes a document may expand to, its aliases counted at every use: an alias bomb
# (a 546-byte file that expands to 10^9 values) is refused before it is built.
MAX_YAML_NODES = 100_000


# YAML 1.2 floats that YAML 1.1 (PyYAML) reads as strings: 1e-3, 5E4, 1.0e+3.
EXPONENT_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)$")


class YAML12Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """SafeLoader that reads `1e-3` as a float, as YAML 1.2 does (PyYAML follows 1.1).

    Built on libyaml's parser where PyYAML has it: `compare` and `report` parse every
    run's recorded config, and the C parser does 100 of them in 0.08 s instead of 0.58 s.
    """


class YAML12Dumper(yaml.SafeDumper):
    """SafeDumper that quotes strings like '1e-3', so YAML12Loader reads them back as strings."""


for _cls in (YAML12Loader, YAML12Dumper):
    _cls.add_implicit_resolver("tag:yaml.org,2002:float", EXPONENT_FLOAT, list("-+0123456789"))


def _mapping_without_duplicates(loader, node, deep=False):
    """A key given twice is a mistake (the first value would vanish): refuse it."""
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key '{key}'", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


YAML12Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def parse_yaml(text: str, where: str) -> Any:
    """The document in `text`, as yaml.load reads it, but its node graph is measured before
    anything is built: one that would expand past MAX_YAML_NODES, or refer to itself, is refused."""
    loader = YAML12Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, {}, where)
        return loader.construct_document(node)
    except RecursionError:
        raise ConfigError(f"{where}: YAML nested too deeply to be a config") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML{at}: {problem}") from None
    finally:
        loader.dispose()


def _check_expansion(node: yaml.Node, sizes: dict[int, int], where: str) -> int:
    """The values `node` expands to, an alias counted at every use (each distinct node is
    measured once, so this costs the file's size, not the expansion's)."""
    known = sizes.get(id(node))
    if known is not None:
        if known < 0:
            raise ConfigError(f"{where}: a YAML alias refers to itself; a config cannot")
        return known
    sizes[id(node)] = -1  # being measured
    if isinstance(node, yaml.SequenceNode):
        children = node.value
    elif isinstance(node, yaml.MappingNode):
        children = [n for pair in node.value for n in pair]
    else:
        children = []
    size = 1 + sum(_check_expansion(child, sizes, where) for child in children)
    if size > MAX_YAML_NODES:
        raise ConfigError(f"{where}: the YAML expands to more than {MAX_YAML_NODES:,} values "
                          "(aliases counted at every use); a config or sweep file needs far fewer")
    sizes[id(node)] = size
    return size


def read_yaml_file(path: str | Path) -> dict:
    """Read a YAML mapping from `path`, with one-line errors for every way it can be wrong."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_YAML_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    if len(raw) > MAX_YAML_BYTES:
        raise ConfigError(f"{path}: larger than the {MAX_YAML_BYTES:,} bytes a config or sweep file may have")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (invalid UTF-8)") from None
    return yaml_mapping(text, path)


def yaml_mapping(text: str, path: str | Path) -> dict:
    """The YAML mapping in `text`, read from `path`; ConfigError naming it otherwise."""
    if "\x00" in text:
        raise ConfigError(f"{path}: not a text file (contains NUL bytes)")
    data = parse_yaml(text, str(path))
    if data is None:
        raise ConfigError(f"{path}: the file is empty; a config is a YAML mapping such as 'name: demo'")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config is a YAML mapping of keys, not a {type(data).__name__}")
    return data


def to_yaml(config: Config) -> str:
    """The fully resolved config as YAML, in schema order, so a run can be rerun exactly."""
    return yaml.dump(config.model_dump(mode="json"), Dumper=YAML12Dumper, sort_keys=False, default_flow_style=None)
