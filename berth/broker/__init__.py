"""Marketplace and provisioning broker: catalogue, partners, provisioning operations, attachments (coming)."""
