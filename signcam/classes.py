"""The 43 GTSRB sign classes: names, categories and speed-limit meaning.

Example:
    >>> from signcam.classes import CLASSES
    >>> CLASSES[14].name, CLASSES[14].category
    ('Stop', 'other')
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CATEGORIES",
    "CLASSES",
    "NUM_SIGN_CLASSES",
    "NOT_A_SIGN",
    "SignClass",
    "category_of",
    "label_of",
]


@dataclass(frozen=True)
class SignClass:
    """One GTSRB class.

    Args:
        id: GTSRB class id, 0..42.
        name: Short English name.
        category: ``prohibitory``, ``danger``, ``mandatory`` or ``other`` (GTSDB's grouping).
        speed_limit: km/h for a speed-limit sign; ``None`` otherwise.
        ends_limit: True for signs that lift a speed limit.
    """

    id: int
    name: str
    category: str
    speed_limit: int | None = None
    ends_limit: bool = False


_P, _D, _M, _O = "prohibitory", "danger", "mandatory", "other"

CLASSES: tuple[SignClass, ...] = (
    SignClass(0, "Speed limit 20", _P, 20),
    SignClass(1, "Speed limit 30", _P, 30),
    SignClass(2, "Speed limit 50", _P, 50),
    SignClass(3, "Speed limit 60", _P, 60),
    SignClass(4, "Speed limit 70", _P, 70),
    SignClass(5, "Speed limit 80", _P, 80),
    SignClass(6, "End of speed limit 80", _O, ends_limit=True),
    SignClass(7, "Speed limit 100", _P, 100),
    SignClass(8, "Speed limit 120", _P, 120),
    SignClass(9, "No overtaking", _P),
    SignClass(10, "No overtaking by trucks", _P),
    SignClass(11, "Priority at next intersection", _D),
    SignClass(12, "Priority road", _O),
    SignClass(13, "Give way", _O),
    SignClass(14, "Stop", _O),
    SignClass(15, "No vehicles", _P),
    SignClass(16, "No trucks", _P),
    SignClass(17, "No entry", _O),
    SignClass(18, "General danger", _D),
    SignClass(19, "Bend left", _D),
    SignClass(20, "Bend right", _D),
    SignClass(21, "Double bend", _D),
    SignClass(22, "Uneven road", _D),
    SignClass(23, "Slippery road", _D),
    SignClass(24, "Road narrows on the right", _D),
    SignClass(25, "Road works", _D),
    SignClass(26, "Traffic signals", _D),
    SignClass(27, "Pedestrians", _D),
    SignClass(28, "Children crossing", _D),
    SignClass(29, "Bicycles crossing", _D),
    SignClass(30, "Ice or snow", _D),
    SignClass(31, "Wild animals", _D),
    SignClass(32, "End of all restrictions", _O, ends_limit=True),
    SignClass(33, "Turn right ahead", _M),
    SignClass(34, "Turn left ahead", _M),
    SignClass(35, "Ahead only", _M),
    SignClass(36, "Straight or right", _M),
    SignClass(37, "Straight or left", _M),
    SignClass(38, "Keep right", _M),
    SignClass(39, "Keep left", _M),
    SignClass(40, "Roundabout", _M),
    SignClass(41, "End of no overtaking", _O),
    SignClass(42, "End of no overtaking by trucks", _O),
)

NUM_SIGN_CLASSES = len(CLASSES)
#: Index of the extra "not a sign" output the classifier is trained with.
NOT_A_SIGN = NUM_SIGN_CLASSES
CATEGORIES = (_P, _D, _M, _O)


def label_of(class_id: int) -> str:
    """Human name of a class id (``"Not a sign"`` for the rejection class)."""
    return CLASSES[class_id].name if 0 <= class_id < NUM_SIGN_CLASSES else "Not a sign"


def category_of(class_id: int) -> str:
    """Category of a class id, as GTSDB groups them."""
    return CLASSES[class_id].category
