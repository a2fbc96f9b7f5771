"""Tests of raykd.teachers, one module per TeacherModelType."""
