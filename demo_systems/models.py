from __future__ import annotations

import hashlib

from django.db import models
from django.utils import timezone


class ApiKey(models.Model):
    """An API key of one demo system. The system keeps only the hash, as a real one would."""

    system = models.CharField(max_length=32)
    key_hash = models.CharField(max_length=64, unique=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    @staticmethod
    def hash(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()


class IdempotencyRecord(models.Model):
    """A write that a demo system has done, by the caller's idempotency key."""

    system = models.CharField(max_length=32)
    key = models.CharField(max_length=128)
    action = models.CharField(max_length=128)
    response = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["system", "key"], name="demo_idempotency_once")]


class Customer(models.Model):
    id = models.CharField(max_length=16, primary_key=True)
    name = models.CharField(max_length=128)
    email = models.EmailField()
    ssn = models.CharField(max_length=11)
    credit_limit = models.DecimalField(max_digits=12, decimal_places=2)
    status = models.CharField(max_length=16, default="active")


class Refund(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="refunds")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=500)
    created_at = models.DateTimeField(default=timezone.now)


class Note(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="notes")
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)


class Ticket(models.Model):
    id = models.CharField(max_length=16, primary_key=True)
    subject = models.CharField(max_length=200)
    body = models.TextField()
    requester_email = models.EmailField()
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.SET_NULL)
    status = models.CharField(max_length=16, default="open")


class Comment(models.Model):
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="comments")
    body = models.TextField()
    public = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
