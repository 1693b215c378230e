"""GuardDuty-style detection on the proxied traffic.

The edge hands each finished request to the detectors as an ``Observation``; each detector
keeps bounded per-key state and returns findings when a threshold is crossed. Importing this
package registers every detector in ``DETECTORS``.
"""

from wafproxy.detect import detectors as detectors
from wafproxy.detect.detector import (
    DETECTORS,
    Detector,
    DetectorFactory,
    DetectorKind,
    build_detectors,
    parse_detector_settings,
    parse_detectors,
)
from wafproxy.detect.observation import Observation
from wafproxy.detect.settings import DetectorSettings

__all__ = [
    "DETECTORS",
    "Detector",
    "DetectorFactory",
    "DetectorKind",
    "DetectorSettings",
    "Observation",
    "build_detectors",
    "parse_detector_settings",
    "parse_detectors",
]
