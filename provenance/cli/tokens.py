"""API tokens: create, list, revoke."""

from __future__ import annotations

import click

from provenance.access import AccessStore
from provenance.cli.common import Ctx, emit_json, err, json_option, out, table, when


@click.group()
def token() -> None:
    """API tokens: create, list, revoke."""


def _store(ctx: Ctx) -> AccessStore:
    return AccessStore(ctx.settings.home / "access.db")


@token.command("create")
@click.argument("user")
@click.option("--admin", is_flag=True, help="The user sees everything and may send events.")
@click.option("--project", "projects", multiple=True, help="Make the user a member of this project.")
@click.option("--label", help="What the token is for.")
@json_option
@click.pass_obj
def token_create(ctx: Ctx, user: str, admin: bool, projects: tuple[str, ...], label: str | None,
                 as_json: bool) -> None:
    """Create a token for USER (printed once; only its hash is stored)."""
    store = _store(ctx)
    try:
        token_id, secret = store.create_token(user, admin=admin, projects=projects, label=label)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    finally:
        store.close()
    if as_json:
        return emit_json({"id": token_id, "user": user, "token": secret, "admin": admin, "projects": list(projects)})
    out.print(f"token {token_id} for {user}{' (admin)' if admin else ''}: {secret}")
    err.print("store it now: it is not shown again")


@token.command("list")
@json_option
@click.pass_obj
def token_list(ctx: Ctx, as_json: bool) -> None:
    """Tokens with their users, projects and last use (never the tokens themselves)."""
    store = _store(ctx)
    try:
        tokens = store.tokens()
    finally:
        store.close()
    if as_json:
        return emit_json({"tokens": tokens})
    rows = [[t["id"], t["user"], "yes" if t["admin"] else "", ", ".join(t["projects"]), t["label"] or "",
             when(t["created_ts"]), when(t["last_used_ts"]), "yes" if t["revoked"] else ""] for t in tokens]
    out.print(table(f"{len(tokens)} token(s)", ["id", "user", "admin", "projects", "label", "created", "last used",
                                                "revoked"], rows, ids=("id",)))


@token.command("revoke")
@click.argument("token_id")
@click.pass_obj
def token_revoke(ctx: Ctx, token_id: str) -> None:
    """Revoke a token by its id (see `token list`)."""
    store = _store(ctx)
    try:
        store.revoke(token_id)
    finally:
        store.close()
    out.print(f"revoked {token_id}")


COMMANDS = [token]
