"""Managed rule groups shipped with wafproxy (YAML), and the default web ACL."""
