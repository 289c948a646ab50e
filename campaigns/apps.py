from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Campaigns"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from anymail.signals import tracking

        from .receivers import anymail_tracking_received

        tracking.connect(anymail_tracking_received, dispatch_uid="campaigns.anymail_tracking")
