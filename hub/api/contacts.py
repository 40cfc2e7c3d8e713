"""Contacts: detail with history across channels, edit, merge."""

from __future__ import annotations

from typing import Any

from hub.actions import contacts as actions
from hub.api.framework import ALL_STAFF, SUPERVISORS, Api, Context
from hub.api.schemas import ContactPatch, MergeIn

api = Api()


@api.route("GET", "/api/contacts/{id}", roles=ALL_STAFF, tag="contacts")
async def get_contact(ctx: Context) -> dict[str, Any]:
    """Who this is (every address) and their conversations on every channel."""
    async with ctx.services.sessions() as session:
        contact = await actions.load_contact(session, ctx.path["id"])
        out = actions.contact_dict(contact)
        out["history"] = await actions.history(session, contact.id)
    return out


@api.route("PATCH", "/api/contacts/{id}", roles=ALL_STAFF, body=ContactPatch, tag="contacts")
async def patch_contact(ctx: Context) -> dict[str, Any]:
    """Rename or set custom attributes (a null value removes the attribute)."""
    body: ContactPatch = ctx.body
    async with ctx.services.sessions() as session, session.begin():
        contact = await actions.load_contact(session, ctx.path["id"])
        events = await actions.do_update(
            session, contact, name=body.name, attributes=body.attributes
        )
        out = actions.contact_dict(contact)
    await ctx.services.bus.publish(events)
    return out


@api.route("POST", "/api/contacts/{id}/merge", roles=SUPERVISORS, body=MergeIn, tag="contacts")
async def merge_contact(ctx: Context) -> dict[str, Any]:
    """Merge another contact into this one (addresses and conversations move here)."""
    body: MergeIn = ctx.body
    async with ctx.services.sessions() as session, session.begin():
        keep = await actions.load_contact(session, ctx.path["id"])
        other = await actions.load_contact(session, body.other_id)
        events = await actions.do_merge(session, ctx.user, keep, other)
        await session.refresh(keep, ["addresses"])
        out = actions.contact_dict(keep)
    await ctx.services.bus.publish(events)
    return out
