"""An import-linter contract the built-in types cannot say: no package imports another
package's private module (a module whose name, below the package, starts with `_`).

Registered in pyproject.toml ([tool.importlinter] contract_types); `make lint` runs it.
"""

from __future__ import annotations

from typing import Any

import grimp
from importlinter import Contract, ContractCheck, fields, output


def _private(module: str) -> bool:
    return any(part.startswith("_") and part != "__init__" for part in module.split(".")[1:])


class PrivateModulesContract(Contract):
    """Modules of `packages` may import a private module only from their own package."""

    type_name = "private_modules"

    packages = fields.ListField(subfield=fields.StringField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        packages = set(self.packages)  # type: ignore[call-overload]
        broken: list[dict[str, Any]] = []
        for importer in sorted(graph.modules):
            home = importer.split(".")[0]
            if home not in packages:
                continue
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                if imported.split(".")[0] != home and _private(imported):
                    details = graph.get_import_details(importer=importer, imported=imported)
                    lines = [detail["line_number"] for detail in details]
                    broken.append({"importer": importer, "imported": imported, "lines": lines})
        return ContractCheck(kept=not broken, metadata={"broken": broken})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for item in check.metadata["broken"]:
            where = ", ".join(f"l.{line}" for line in item["lines"])
            output.print_error(
                f"{item['importer']} imports {item['imported']} ({where}): a private module "
                "of another package; import what its package exports instead",
                bold=False,
            )
            output.new_line()
