"""Participants, uploads, images and their annotations: data model, REST API, roles and pages."""
