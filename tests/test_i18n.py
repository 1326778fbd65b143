"""Messages in English or Simplified Chinese: the catalog, and how each front end picks one."""

from __future__ import annotations

import html
import importlib.util
import io
import json
import re
import string
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from babel.messages.pofile import read_po
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

import scnet_magic
from scnet_magic import InvalidInput, ScnetClient, i18n
from scnet_magic.config import ENV_VARS, resolve_language
from scnet_magic.errors import ApiError
from scnet_magic.sandbox import Sandbox
from scnet_magic.startform import StartForm
from scnet_magic.validation import validate_language

from conftest import said
from frontends import run_scnet

ROOT = Path(__file__).resolve().parent.parent
ID = "1896050410550136833"
SCNET = str(Path(sys.executable).with_name("scnet"))
WAIT = 30.0  # seconds a background request of the form may take, at most
# Known Chinese strings, one per kind of message.
ZH_STARTED = "已启动，但尚未应答"  # the pending headline of a start result
ZH_URL = "外部地址："
ZH_NO_ID = "没有实例 ID"
ZH_PORT_RULE = "端口必须"


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "compile_catalog", ROOT / "tools" / "compile_catalog.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


compile_catalog = _tool()


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def _strings(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


@pytest.fixture(scope="module")
def catalog() -> object:
    with compile_catalog.PO_PATH.open("rb") as source:
        return read_po(source, locale="zh_CN", domain="scnet_magic")


@pytest.fixture
def lang(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Nothing chosen: no SCNET_LANG and an English (C) locale, unless the test sets one."""
    monkeypatch.delenv(ENV_VARS["language"], raising=False)
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


# -- the catalog ---------------------------------------------------------------------------


def test_every_message_in_the_code_has_a_chinese_translation(catalog: object) -> None:
    messages = compile_catalog.extract()
    assert len(messages) > 150
    missing = []
    for msgid in messages:
        found = catalog.get(msgid)  # type: ignore[attr-defined]
        if found is None or not all(s.strip() for s in _strings(found.string)):
            missing.append(msgid)
    assert missing == []


def test_placeholders_are_the_same_in_both_languages(catalog: object) -> None:
    checked = 0
    for message in catalog:  # type: ignore[attr-defined]
        if not message.id:
            continue
        ids = _strings(message.id)
        for translation in _strings(message.string):
            assert _placeholders(translation) == _placeholders(ids[-1]), message.id
            checked += 1
    assert checked > 150


def test_committed_catalog_files_match_the_code_and_each_other() -> None:
    # The .po holds exactly the code's messages, and the .mo is that .po compiled.
    assert compile_catalog.main(["--check"]) == 0
    po, mo = compile_catalog.PO_PATH, compile_catalog.MO_PATH
    table = compile_catalog.compiled(mo.read_bytes(), mo)
    assert table == compile_catalog.compiled(po.read_bytes(), po)
    assert table["plural rule"] == "nplurals=1; plural=0;"
    assert table["Not started"] == "未启动"


def test_the_check_fails_on_a_stale_mo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "scnet_magic.mo"
    catalog = read_po(io.BytesIO(compile_catalog.PO_PATH.read_bytes()), locale="zh_CN")
    catalog.get("Not started").string = "没有启动"  # a translation changed, the .mo not rebuilt
    stale.write_bytes(compile_catalog.mo_bytes(catalog))
    monkeypatch.setattr(compile_catalog, "MO_PATH", stale)
    assert compile_catalog.main(["--check"]) == 1


# -- choosing the language ----------------------------------------------------------------


@pytest.mark.parametrize("value", ["zh", "zh_CN", "zh-CN", "ZH_cn.UTF-8", " zh "])
def test_chinese_spellings(value: str) -> None:
    assert validate_language(value) == "zh"


@pytest.mark.parametrize("value", ["en", "en_US", "en-GB", "EN"])
def test_english_spellings(value: str) -> None:
    assert validate_language(value) == "en"


@pytest.mark.parametrize("value", ["fr", "", "chinese", 3, None])
def test_other_languages_are_refused(value: object) -> None:
    with pytest.raises(InvalidInput, match="language must be en or zh"):
        validate_language(value)


def test_resolution_order(
    lang: pytest.MonkeyPatch, isolated_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert resolve_language() == "en"
    lang.setenv("LANG", "zh_CN.UTF-8")
    assert resolve_language() == "zh"
    lang.setenv("LC_ALL", "C.UTF-8")  # LC_ALL comes before LANG
    assert resolve_language() == "en"
    isolated_config.write_text('language = "zh"\n')
    assert resolve_language() == "zh"
    lang.setenv("SCNET_LANG", "en")
    assert resolve_language() == "en"
    assert resolve_language("zh-CN") == "zh"
    lang.setenv("SCNET_LANG", "klingon")
    # A typo in the environment or the file does not stop every call: English, and one line
    # on stderr naming the value and where it came from.
    assert resolve_language() == "en"
    assert re.search(
        r"^Warning: unknown language 'klingon' in SCNET_LANG .*English\.$",
        capsys.readouterr().err,
        re.MULTILINE,
    )
    lang.delenv("SCNET_LANG")
    isolated_config.write_text('language = "fr"\n')
    assert resolve_language() == "en"
    assert "unknown language 'fr' in config file " in capsys.readouterr().err
    with pytest.raises(InvalidInput, match=r"not 'fr'"):
        resolve_language("fr")  # typed just now: refused
    assert i18n.current() == "en"  # a message outside any front end skips the bad value


def test_using_sets_the_language_for_the_block_and_nested_calls_keep_it(
    lang: pytest.MonkeyPatch,
) -> None:
    with i18n.using("zh"):
        assert i18n._("Not started") == "未启动"
        with i18n.using(None):  # a client without a language inside a magic's call
            assert i18n.current() == "zh"
    assert i18n._("Not started") == "Not started"


def test_error_code_table_in_both_languages() -> None:
    error = ApiError("10008", "权限不足 token expired")
    with i18n.using("zh"):  # written in the language in force when shown
        assert "权限不足" in error.message and "令牌权限不足" in error.hint
        assert "权限不足 token expired" in error.message  # the platform's msg as it came
    assert error.code == "10008" and error.meaning == "insufficient permission"
    english = ApiError("10008", "权限不足 token expired")
    assert "insufficient permission" in english.message and "get a new token" in english.hint


# -- the magics ----------------------------------------------------------------------------


def _start_text(ip: InteractiveShell) -> str:
    with capture_output() as out:
        ip.run_line_magic("scnet_start", f"--id {ID} --port 1223")
    shown = out.outputs[-1]  # the result, in place of "Starting…"
    assert isinstance(shown.data["text/html"], str)
    return str(shown.data["text/plain"]) + str(shown.data["text/html"])


def _magic_error(ip: InteractiveShell, line: str) -> str:
    with pytest.raises(UsageError) as caught:
        ip.run_line_magic("scnet_start", line)
    return str(caught.value)


def test_magic_in_chinese_through_config(
    ip: InteractiveShell, sandbox_env: Sandbox, lang: pytest.MonkeyPatch
) -> None:
    ip.run_line_magic("config", 'ScnetMagics.language = "zh"')
    assert ZH_STARTED in _start_text(ip)
    assert ZH_PORT_RULE in _magic_error(ip, f"--id {ID} --port 0")
    ip.run_line_magic("config", 'ScnetMagics.language = "en"')
    lang.setenv("SCNET_LANG", "zh")  # the session's choice comes first
    assert "Started, not answering yet" in _start_text(ip)


def test_magic_refuses_an_unknown_language_and_keeps_the_old_one(
    ip: InteractiveShell, sandbox_env: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    # %config says so at once, in the language in force, and keeps it: the magics go on in it.
    ip.run_line_magic("config", 'ScnetMagics.language = "en"')
    ip.run_line_magic("config", 'ScnetMagics.language = "fr"')
    assert "language must be en or zh" in caplog.text
    assert "Started, not answering yet" in _start_text(ip)
    ip.run_line_magic("config", 'ScnetMagics.language = "zh"')
    caplog.clear()
    ip.run_line_magic("config", 'ScnetMagics.language = "fr"')
    assert "语言必须是 en 或 zh" in caplog.text
    assert ZH_STARTED in _start_text(ip)
    assert len(sandbox_env.start_requests()) == 2


def test_magic_in_chinese_through_scnet_lang(
    ip: InteractiveShell, sandbox_env: Sandbox, lang: pytest.MonkeyPatch
) -> None:
    lang.setenv("SCNET_LANG", "zh_CN")
    assert ZH_STARTED in _start_text(ip)


def test_magic_in_chinese_through_the_config_file(
    ip: InteractiveShell, sandbox_env: Sandbox, lang: pytest.MonkeyPatch, isolated_config: Path
) -> None:
    isolated_config.write_text('language = "zh"\n')
    assert ZH_STARTED in _start_text(ip)


def test_every_magic_speaks_the_config_files_language(
    ip: InteractiveShell, sandbox_env: Sandbox, lang: pytest.MonkeyPatch, isolated_config: Path
) -> None:
    isolated_config.write_text('language = "zh"\n')
    unknown = "1234567890123456789"
    for magic, line in [("scnet_url", f"--id {unknown}"), ("scnet_stop", f"--id {unknown} --yes")]:
        with pytest.raises(UsageError) as caught:
            ip.run_line_magic(magic, line)
        assert "SCNet API 错误 10004" in str(caught.value), magic
        assert "请检查实例 ID" in str(caught.value), magic
    with pytest.raises(UsageError, match="实例 ID 只能包含数字"):
        ip.run_line_magic("scnet_url", "--id abc")
    with capture_output():
        found = ip.run_line_magic("scnet_url", f"--id {ID}")
    assert "的自定义服务" in repr(found)  # as IPython's displayhook would show it, later


def test_magic_in_chinese_through_the_locale(
    ip: InteractiveShell, sandbox_env: Sandbox, lang: pytest.MonkeyPatch
) -> None:
    lang.setenv("LANG", "zh_CN.UTF-8")
    shown = _start_text(ip)
    assert ZH_STARTED in shown and ZH_URL in shown
    # An error and its hint.
    message = _magic_error(ip, "--port 1223")
    assert ZH_NO_ID in message and "请给出 --id" in message
    lang.setenv("LANG", "en_US.UTF-8")
    assert "Started, not answering yet" in _start_text(ip)


# -- the client ----------------------------------------------------------------------------


def test_client_language_argument_and_platform_messages_unchanged(
    sandbox_env: Sandbox, lang: pytest.MonkeyPatch
) -> None:
    lang.setenv("SCNET_LANG", "en")
    with pytest.raises(InvalidInput, match="language must be"):
        ScnetClient(language="de")
    english = ScnetClient().start_service(ID, 1223)
    with ScnetClient(language="zh") as client:
        with pytest.raises(InvalidInput, match=ZH_PORT_RULE):
            client.start_service(ID, 0)
        result = client.start_service(ID, 1223)
    # Machine-readable results are the same whatever the language.
    assert result.to_dict() == english.to_dict()
    # The client's language is the process's from then on, as %config sets the magics'.
    with pytest.raises(InvalidInput, match=ZH_PORT_RULE):
        ScnetClient().start_service(ID, 0)


def test_an_error_is_written_in_the_language_in_force_when_shown(
    lang: pytest.MonkeyPatch,
) -> None:
    from scnet_magic.validation import validate_port

    with i18n.using("zh"), pytest.raises(InvalidInput) as raised:
        validate_port(0)
    assert "port must be from 1 to 65535" in raised.value.message  # shown outside: English
    with i18n.using("zh"):
        assert ZH_PORT_RULE in raised.value.message and ZH_PORT_RULE in str(raised.value)


def test_messages_outside_any_front_end_follow_the_environment(
    lang: pytest.MonkeyPatch,
) -> None:
    lang.setenv("LANG", "zh_CN.UTF-8")
    with pytest.raises(InvalidInput, match=ZH_PORT_RULE):
        from scnet_magic.validation import validate_port

        validate_port(0)


# -- the form -----------------------------------------------------------------------------


def _form_in_chinese(form: StartForm) -> None:
    """Labels, a button, a note, a validation message, and a result from the background thread
    (which must carry the form's language, whatever the clicking thread has)."""
    assert form.port.description == "端口" and form.start_button.description == "启动"
    assert "实例" in form.notebook_menu.description
    assert form.wait(WAIT)
    assert "个运行中" in form.notebook_note.value
    form.notebook_id.value = ID
    form.start_button.click()  # no port yet
    assert "端口为空" in html.unescape(form.problems.value)
    form.port.value = "1223"
    with i18n.using("en"):  # the click comes from elsewhere: the form keeps its language
        form.start_button.click()
    assert form.wait(WAIT)
    assert ZH_STARTED in html.unescape(form.result_area.value)
    assert form.start_button.description == "启动"
    with i18n.using("en"):  # the Protect box, ticked and typed into from elsewhere, too
        form.protect.checkbox.value = True
        form.protect.password.value = "a typed password"
    assert "已收到输入的密码" in html.unescape(form.protect.note.value)


def test_form_in_chinese_through_config(
    ip: InteractiveShell, sandbox_env: Sandbox, lang: pytest.MonkeyPatch
) -> None:
    ip.run_line_magic("config", 'ScnetMagics.language = "zh"')
    with capture_output():
        form = ip.run_line_magic("scnet_start", "")
    _form_in_chinese(form)


@pytest.mark.parametrize("source", ["SCNET_LANG", "config file", "LANG"])
def test_form_in_chinese_through_the_environment(
    source: str, sandbox_env: Sandbox, lang: pytest.MonkeyPatch, isolated_config: Path
) -> None:
    if source == "SCNET_LANG":
        lang.setenv("SCNET_LANG", "zh-CN")
    elif source == "config file":
        isolated_config.write_text('language = "zh_CN"\n')
    else:
        lang.setenv("LANG", "zh_CN.UTF-8")
    with capture_output():
        form = scnet_magic.form()
    _form_in_chinese(form)


def test_form_in_english_by_default(sandbox_env: Sandbox, lang: pytest.MonkeyPatch) -> None:
    with capture_output():
        form = scnet_magic.form()
    assert form.port.description == "Port" and form.start_button.description == "Start"
    assert form.wait(WAIT)


# -- the command line ----------------------------------------------------------------------


def scnet(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_scnet(list(args), env)  # in this process; the sandbox verb below runs the script


@pytest.mark.parametrize(
    ("how", "env"),
    [
        (["--lang", "zh"], {}),
        ([], {"SCNET_LANG": "zh"}),
        ([], {"LANG": "zh_CN.UTF-8"}),
        ([], {"LC_ALL": "zh_CN.UTF-8", "LANG": "en_US.UTF-8"}),
    ],
)
def test_cli_in_chinese(
    how: list[str], env: dict[str, str], sandbox_env: Sandbox, lang: pytest.MonkeyPatch
) -> None:
    helped = scnet(*how, "--help", **env)
    assert helped.returncode == 0
    assert "用法：scnet" in helped.stdout and "启动自定义服务并输出其外部地址" in helped.stdout
    started = scnet(*how, "start", "--id", ID, "--port", "1223", **env)
    assert started.returncode == 0, started.stderr
    assert ZH_STARTED in started.stdout and "地址：" in started.stdout
    refused = scnet(*how, "start", "--id", ID, "--port", "0", **env)
    assert refused.returncode == 2
    assert "scnet：错误：端口必须" in refused.stderr
    assert sandbox_env.start_requests()[-1].body["customizePort"] == "1223"  # nothing more sent


def test_cli_in_chinese_through_the_config_file(
    sandbox_env: Sandbox, lang: pytest.MonkeyPatch, isolated_config: Path
) -> None:
    isolated_config.write_text('language = "zh"\n')
    started = scnet("start", "--id", ID, "--port", "1223")
    assert ZH_STARTED in started.stdout
    assert (
        "Started, not answering yet"
        in scnet("--lang", "en", "start", "--id", ID, "--port", "1223").stdout
    )


def test_cli_in_english_by_default_and_refuses_an_unknown_language(
    sandbox_env: Sandbox, lang: pytest.MonkeyPatch
) -> None:
    assert "usage: scnet" in scnet("--help").stdout
    refused = scnet("--lang", "fr", "start", "--id", ID, "--port", "1223")
    assert refused.returncode == 2 and "Language must be en or zh" in refused.stderr
    assert sandbox_env.start_requests() == []


def test_json_output_is_byte_identical_in_both_languages(
    sandbox_env: Sandbox, lang: pytest.MonkeyPatch
) -> None:
    outputs = [
        scnet("start", "--id", ID, "--port", "1223", "--json", **env).stdout
        for env in ({"LANG": "en_US.UTF-8"}, {"LANG": "zh_CN.UTF-8"}, {"SCNET_LANG": "zh"})
    ]
    assert outputs[0] and json.loads(outputs[0])["status"] == "pending"
    assert outputs[0] == outputs[1] == outputs[2]


def test_sandbox_console_in_chinese(lang: pytest.MonkeyPatch) -> None:
    proc = subprocess.Popen(
        [SCNET, "--lang", "zh", "sandbox", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        while not lines or ("Ctrl-C" not in lines[-1] and lines[-1]):
            lines.append(proc.stdout.readline())
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    shown = "".join(lines)
    assert "命令执行：关闭" in shown and "按 Ctrl-C 停止" in shown
    assert "export SCNET_BASE_URL=http://127.0.0.1:" in shown  # the lines to paste stay as is


def test_login_status_in_chinese(ip: InteractiveShell, lang: pytest.MonkeyPatch) -> None:
    lang.setenv("LANG", "zh_CN.UTF-8")
    with capture_output() as out:
        ip.run_line_magic("scnet_login", "--status")
    assert "尚未登录：请运行 %scnet_login。" in said(out)


def test_results_shown_later_speak_the_session_language(
    ip: InteractiveShell, sandbox_env: Sandbox, lang: pytest.MonkeyPatch
) -> None:
    ip.run_line_magic("config", 'ScnetMagics.language = "zh"')
    with capture_output():
        result = ip.run_line_magic("scnet_start", f"--id {ID} --port 1223")
    assert ZH_STARTED in repr(result)  # as IPython's displayhook would show it
    assert ZH_STARTED in result._repr_mimebundle_()["text/html"]
    with i18n.using("en"):  # a call that chose its own language keeps it
        assert "Started, not answering yet" in repr(result)
