"""Outbound webhooks: what happens (deliveries, opens, bounces, registrations, sales,
redemptions) POSTed to subscribers as signed JSON (Standard Webhooks), through their own
outbox. ``feed`` turns new rows of the source tables into outbox rows, ``sender`` posts
them; docs/webhooks.md describes the events and how a receiver verifies them."""
