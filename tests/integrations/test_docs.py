"""The Python snippets of docs/integrations.md run, in order, as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("langchain_core", reason="needs the langchain extra")
pytest.importorskip("llama_index.core", reason="needs the llamaindex extra")

DOC = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:RunnableWithMessageHistory is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecationWarning:inspect")
def test_integration_docs_snippets_run(capsys: pytest.CaptureFixture[str]) -> None:
    found = re.findall(r"(<!-- fragment -->\n)?```python\n(.*?)```", DOC.read_text(), re.DOTALL)
    blocks = [code for fragment, code in found if not fragment]  # fragments are excerpts
    assert len(blocks) >= 8
    namespace: dict[str, object] = {"__name__": "docs_integrations"}
    try:
        for block in blocks:
            exec(compile(block, str(DOC), "exec"), namespace)
    finally:
        memory = namespace.get("memory")
        if memory is not None:
            memory.close()  # type: ignore[attr-defined]
    out = capsys.readouterr().out
    assert "Please text me, I can't take calls at work. sms" in out
    assert "Where is my replacement?" in out
    assert "recalled DATA about the customer" in out
    assert (
        "Refunds reach your card within 5 business days. -- "
        "Acme Help Center › Returns › Refunds (https://help.acme.example/returns, chunk 1)"
    ) in out
    assert "success\n" in out
    assert 'source="agent">Prefers deliveries to the office at 200 Clarendon St</item>' in out
    # The agent middleware recorded the turn; the store found what it put.
    assert """['Where is my parcel?', "I'll text you the tracking link."]""" in out
    assert "preferred_channel observation" in out
    assert "('memories', 'email:ann@example%2Ecom')" in out
    assert "['recall', 'search_knowledge', 'remember']" in out
    # The fused query engine's sources: the customer's memory and the knowledge base.
    assert any(
        line.startswith("[") and "'knowledge'" in line and "'message'" in line
        for line in out.splitlines()
    )
