from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Campaigns"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from crm.signals import campaign_recipient_owner, customer_exporting

        from .receivers import export_campaign_history, recipient_owner

        customer_exporting.connect(export_campaign_history, dispatch_uid="campaigns.export_campaign_history")
        campaign_recipient_owner.connect(recipient_owner, dispatch_uid="campaigns.recipient_owner")
