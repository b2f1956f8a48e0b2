"""Open websockets follow the account: deactivation, a role change, deletion, a deleted token or a
session logout closes them (accounts.sockets publishes after commit; the consumers also re-check periodically,
which covers writes that bypass signals, such as ``QuerySet.update``)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from accounts.models import ApiToken
from accounts.sockets import close_session_sockets, close_sockets

User = get_user_model()

_WATCHED = {"is_active", "role"}


@receiver(pre_save, sender=User, dispatch_uid="accounts.sockets.remember_stored")
def remember_stored(sender, instance, update_fields=None, raw=False, **kwargs):
    instance._sockets_stored = None
    # A save of other fields (last_login at every sign-in) costs no extra read.
    if raw or instance.pk is None or (update_fields is not None and not _WATCHED & set(update_fields)):
        return
    instance._sockets_stored = sender.objects.filter(pk=instance.pk).values_list("is_active", "role").first()


@receiver(post_save, sender=User, dispatch_uid="accounts.sockets.close_on_change")
def close_on_change(sender, instance, created=False, raw=False, **kwargs):
    stored = getattr(instance, "_sockets_stored", None)
    instance._sockets_stored = None
    if raw or created or stored is None:
        return
    was_active, old_role = stored
    if was_active and not instance.is_active:
        close_sockets(user_id=instance.pk, reason="deactivated")
    elif old_role != instance.role:
        close_sockets(user_id=instance.pk, reason="role_changed")


@receiver(post_delete, sender=User, dispatch_uid="accounts.sockets.close_on_delete")
def close_on_delete(sender, instance, **kwargs):
    close_sockets(user_id=instance.pk, reason="deleted")


@receiver(post_delete, sender=ApiToken, dispatch_uid="accounts.sockets.close_on_token_delete")
def close_on_token_delete(sender, instance, **kwargs):
    # Revocation goes through accounts.services (which closes them itself); a deleted row (the
    # admin, a cleanup) must end its sockets too.
    close_sockets(user_id=instance.user_id, token_id=instance.pk, reason="token_revoked")


@receiver(user_logged_out, dispatch_uid="accounts.sockets.close_on_logout")
def close_on_logout(sender, request, user, **kwargs):
    # Sent before the session is flushed, so its key still names the sockets it opened.
    session = getattr(request, "session", None)
    session_key = getattr(session, "session_key", None)
    if user is not None and user.pk is not None and session_key:
        close_session_sockets(user_id=user.pk, session_key=session_key, reason="logged_out")
