"""The consent chain's checkpoints, read-only: what the daily check verified and mailed."""

from django.contrib import admin

from newsletter.models import ChainCheckpoint


@admin.register(ChainCheckpoint)
class ChainCheckpointAdmin(admin.ModelAdmin):
    list_display = [
        "seq",
        "row_hash",
        "created_at",
        "verified_from_seq",
        "events_verified",
        "mailed_to",
    ]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
