"""Email providers' feedback webhooks (Amazon SES through SNS, Postmark, SendGrid): each
checks its provider's documented signing, then maps its vocabulary onto feedback events
with a plain table of its own."""
